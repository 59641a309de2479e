import { useEffect, useRef } from 'react';

// The recipe in docs/WIDGET.md: the <img> is React's; the widget is mounted after React put it
// in the page and destroyed in the effect's cleanup (React may already have removed the image
// by then: that is fine, the widget never moved it).
export function Photo({ ImageChat, src, imageId, options }) {
  const img = useRef(null);
  useEffect(() => {
    if (!ImageChat) return undefined; // the loader's auto-mount takes it
    const chat = ImageChat.mount(img.current, { ...options, imageId });
    return () => chat.destroy();
  }, [ImageChat, imageId]);
  return <img ref={img} src={src} alt="A valley at dusk" data-image-chat={imageId} />;
}
