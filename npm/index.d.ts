import { ImageChat } from "./image_chat.js";
import type { ImageChatOptions, InitInput } from "./image_chat.js";

export { ImageChat };
export type {
  ImageChatAnonymousAuth,
  ImageChatAuth,
  ImageChatOptions,
  ImageChatSsoAuth,
  ImageChatState,
  ImageChatUpdate,
  ImageChatEventMap,
  ImageChatStateDetail,
  ImageChatCountDetail,
  ImageChatOpenDetail,
  ImageChatOpFailedDetail,
} from "./image_chat.js";

/**
 * Loads the widget's WebAssembly (once per page) and resolves to the `ImageChat` class.
 * `wasm` overrides where the `.wasm` file comes from; by default the bundler's copy is used.
 */
export function load(wasm?: InitInput | Promise<InitInput>): Promise<typeof ImageChat>;

/**
 * Loads the widget if needed and mounts it on an `<img>` (or the first element a CSS selector
 * matches). Call `destroy()` on the result when the image goes away.
 */
export function mount(
  target: HTMLImageElement | string,
  options?: ImageChatOptions,
): Promise<ImageChat>;
