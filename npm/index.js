// image-chat for bundlers (Vite, webpack 5, Rollup, esbuild): the widget as an ES module.
// The WebAssembly file is referenced from the glue with `new URL("image_chat_bg.wasm",
// import.meta.url)`, which bundlers recognise: they copy it into the build as an asset and
// rewrite the URL, so nothing needs configuring. `load()` instantiates it once per page.
import init, { ImageChat } from "./image_chat.js";

let loading;

/**
 * Loads the widget's WebAssembly (once; later calls return the same promise) and resolves to
 * the `ImageChat` class. `wasm` overrides where the `.wasm` file comes from (a URL, a
 * `Response`, bytes or a compiled `WebAssembly.Module`).
 */
export function load(wasm) {
  loading ??= init(wasm === undefined ? undefined : { module_or_path: wasm }).then(() => ImageChat);
  return loading;
}

/**
 * Loads the widget if needed, then mounts it on `target` (an `<img>` or a CSS selector) with
 * `options` (see `ImageChatOptions`; `server` names your image-chat server). Resolves to the
 * widget; call its `destroy()` when the image goes away (e.g. in a component's cleanup).
 */
export async function mount(target, options) {
  const Widget = await load();
  return Widget.mount(target, options);
}

export { ImageChat };
