import { ImageChat } from "./image_chat_text.js";
import type { ImageChatOptions, ImageChatTextOptions, InitInput } from "./image_chat_text.js";

export { ImageChat };
export type {
  ImageChatAnonymousAuth,
  ImageChatAuth,
  ImageChatOptions,
  ImageChatTextOptions,
  ImageChatSsoAuth,
  ImageChatState,
  ImageChatUpdate,
  ImageChatEventMap,
  ImageChatStateDetail,
  ImageChatCountDetail,
  ImageChatOpenDetail,
  ImageChatOpFailedDetail,
} from "./image_chat_text.js";

/**
 * Loads the text bundle's WebAssembly (once per page) and resolves to its `ImageChat` class,
 * which also has `mountText` and `autoMountText`.
 */
export function load(wasm?: InitInput | Promise<InitInput>): Promise<typeof ImageChat>;

/**
 * Loads the text bundle if needed and mounts text mode on an element holding text (or the
 * first element a CSS selector matches): readers select text to discuss it. Call `destroy()`
 * on the result when the container goes away.
 */
export function mountText(target: Element | string, options?: ImageChatTextOptions): Promise<ImageChat>;

/** `mount` (an image) from the text bundle, for apps that discuss both. */
export function mount(target: HTMLImageElement | string, options?: ImageChatOptions): Promise<ImageChat>;
