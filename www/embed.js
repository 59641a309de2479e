/*
 * image-chat embed loader. One tag on a page:
 *
 *   <script src="https://chat.example.com/embed.js" data-tenant="acme" defer></script>
 *
 * loads the widget (pkg/ next to this file), then mounts it on every <img data-image-chat>,
 * now and whenever such images are added later. data-* attributes on this tag are defaults for
 * every image (data-server, data-tenant, data-locale, data-theme, data-read-only,
 * data-marker-size, data-name); an image's own data-* attributes override them.
 * data-server defaults to the origin this file was loaded from. An image's own data-server
 * never receives this tag's data-auth: the widget then connects anonymously (docs/WIDGET.md).
 *
 * Text mode: every [data-collab-chat] element (an article) gets discussions on its text. It
 * is a second, larger bundle (pkg/image_chat_text.js: the widget plus text mode), loaded
 * INSTEAD of the image bundle when the page has such an element when this script runs, so
 * image-only pages never download it; an article added later, or ImageChat.mountText(el,
 * options) on a page that loaded the image bundle, loads it then (mountText then returns a
 * promise of the handle).
 *
 * window.ImageChat is the widget class once loaded (ImageChat.mount(img, options) returns a
 * handle with destroy(); on an image this loader already mounted, it hands that widget over);
 * before that it is a placeholder whose `ready` promise resolves to it. ImageChat.instances
 * lists the widgets alive on the page (destroyed ones leave it).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.ImageChat) return;
  var base = new URL(".", script.src);
  var defaults = {};
  for (var key in script.dataset) defaults[key] = script.dataset[key];
  if (!defaults.server) defaults.server = base.origin;

  // The languages besides English, each a chunk fetched only by pages that speak it
  // (pkg/locales/<tag>.js; scripts/build-widget.sh checks this list against locales/*.json).
  var LOCALES = ["fr", "pt", "ru"];
  // The page's language starts loading with the wasm, so that widgets mount in it at once; the
  // widget imports the same module (one fetch) and stays in English if it fails.
  var wanted = [defaults.locale].concat(navigator.languages || []);
  for (var i = 0; i < wanted.length; i++) {
    var tag = String(wanted[i] || "").trim().split(/[-_]/)[0].toLowerCase();
    if (tag === "en") break;
    if (LOCALES.indexOf(tag) >= 0) {
      import(new URL("pkg/locales/" + tag + ".js", base).href).catch(function () {});
      break;
    }
  }

  var IMAGES = "img[data-image-chat]";
  var TEXTS = "[data-collab-chat]";

  // One bundle: pkg/<name>.js and its wasm, resolving to its ImageChat class.
  function load(name) {
    return import(new URL("pkg/" + name + ".js", base).href).then(function (m) {
      return m.default({ module_or_path: new URL("pkg/" + name + "_bg.wasm", base) }).then(function () {
        return m.ImageChat;
      });
    });
  }

  var textFirst = !!document.querySelector(TEXTS);
  var ready = load(textFirst ? "image_chat_text" : "image_chat").then(function (ImageChat) {
    ImageChat.ready = ready;
    ImageChat.defaults = defaults;
    if (!ImageChat.mountText) ImageChat.mountText = mountText;
    window.ImageChat = ImageChat;
    return ImageChat;
  });
  var textReady = textFirst ? ready : null;

  // The class that has text mode: the one loaded, or the text bundle loaded now.
  function withText() {
    if (!textReady) textReady = load("image_chat_text");
    return textReady;
  }

  // ImageChat.mountText on a page that loaded the image bundle: a promise of the handle.
  function mountText(target, options) {
    return withText().then(function (Text) {
      return Text.mountText(target, options);
    });
  }
  window.ImageChat = { ready: ready, instances: [], defaults: defaults, mountText: mountText };

  function mountAll(ImageChat) {
    ImageChat.autoMount(defaults);
    if (document.querySelector(TEXTS)) {
      withText().then(function (Text) {
        Text.autoMountText(defaults);
      }).catch(function (err) {
        console.error("image-chat: could not load text mode", err);
      });
    }
  }

  ready.then(function (ImageChat) {
    var start = function () {
      mountAll(ImageChat);
      var scheduled = false;
      var SELECTOR = IMAGES + "," + TEXTS;
      new MutationObserver(function (records) {
        var relevant = records.some(function (r) {
          return Array.prototype.some.call(r.addedNodes, function (n) {
            return n.nodeType === 1 && (n.matches(SELECTOR) || n.querySelector(SELECTOR));
          });
        });
        if (!relevant || scheduled) return;
        scheduled = true;
        requestAnimationFrame(function () { scheduled = false; mountAll(ImageChat); });
      }).observe(document.documentElement, { childList: true, subtree: true });
      document.dispatchEvent(new CustomEvent("image-chat:ready", { detail: ImageChat }));
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }).catch(function (err) {
    console.error("image-chat: could not load the widget", err);
  });
})();
