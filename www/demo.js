// Demo pages only: ?locale=fr / ?theme=dark set the image's (or the article's) data-* options
// before the loader runs.
// A file, not an inline script: the demo pages' CSP (crates/server/src/statics.rs) allows none.
(function () {
  var params = new URLSearchParams(location.search), img = document.getElementById("demo-image") ||
    document.querySelector("[data-collab-chat]");
  ["locale", "theme"].forEach(function (name) {
    var value = params.get(name);
    if (value) img.setAttribute("data-" + name, value);
  });
  if (params.get("locale")) document.documentElement.lang = params.get("locale");
})();
