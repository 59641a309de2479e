// How the framework apps get the widget: `mode=explicit` imports the ES module from the
// image-chat server (no loader), `auto` and `both` add the one-tag loader (embed.js), which
// auto-mounts every img[data-image-chat]; in `both` the components also mount explicitly
// (mount hands the loader's widget over).
export async function loadImageChat(server, mode) {
  if (mode === 'explicit') {
    const m = await import(/* @vite-ignore */ `${server}/pkg/image_chat.js`);
    await m.default({ module_or_path: `${server}/pkg/image_chat_bg.wasm` });
    return m.ImageChat;
  }
  const script = document.createElement('script');
  script.src = `${server}/embed.js`;
  script.dataset.tenant = 'demo';
  document.head.append(script);
  await new Promise((resolve) => script.addEventListener('load', resolve, { once: true }));
  const ImageChat = await window.ImageChat.ready;
  return mode === 'both' ? ImageChat : null;
}

export const config = Object.fromEntries(new URLSearchParams(location.search));
