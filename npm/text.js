// image-chat's text mode for bundlers: `import { mountText } from "image-chat/text"`. The text
// bundle is the whole widget plus text mode (discussions on passages of an article), built as a
// second wasm so that apps discussing only images never download it. Like index.js, the glue
// references its wasm with `new URL("image_chat_text_bg.wasm", import.meta.url)`.
import init, { ImageChat } from "./image_chat_text.js";

let loading;

/**
 * Loads the text bundle's WebAssembly (once; later calls return the same promise) and resolves
 * to its `ImageChat` class (`mount`, `mountText`, `autoMount`, `autoMountText`). `wasm`
 * overrides where the `.wasm` file comes from.
 */
export function load(wasm) {
  loading ??= init(wasm === undefined ? undefined : { module_or_path: wasm }).then(() => ImageChat);
  return loading;
}

/**
 * Loads the text bundle if needed, then mounts text mode on `target` (an element holding text,
 * e.g. an `<article>`, or a CSS selector) with `options` (`ImageChatTextOptions`). Resolves to
 * the widget; call its `destroy()` when the container goes away.
 */
export async function mountText(target, options) {
  const Widget = await load();
  return Widget.mountText(target, options);
}

/** As `mount` from "image-chat", from the text bundle (one wasm for images and text). */
export async function mount(target, options) {
  const Widget = await load();
  return Widget.mount(target, options);
}

export { ImageChat };
