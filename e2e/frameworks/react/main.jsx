import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Photo } from './Photo.jsx';
import { config, loadImageChat } from '../load.js';

// The image is a bare child of a React-managed parent, with conditional siblings before and
// after it; the test drives the state through window.__app.
function App({ ImageChat, options }) {
  const [flag, setFlag] = useState(false);
  const [show, setShow] = useState(true);
  const [src, setSrc] = useState('/photo.svg');
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    window.__app = {
      setFlag, setShow, setSrc,
      go(p) { history.pushState(null, '', p); setPath(p); },
    };
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  return (
    <main>
      <h1>Valley</h1>
      {path === '/about' ? (
        <p id="about">About this site.</p>
      ) : (
        <div id="parent">
          {flag && <b id="before">New photo of the day!</b>}
          {show && <Photo ImageChat={ImageChat} src={src} imageId={config.image} options={options} />}
          {flag && <p id="after">Taken at dusk.</p>}
        </div>
      )}
    </main>
  );
}

const ImageChat = await loadImageChat(config.server, config.mode);
createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App ImageChat={ImageChat} options={{ server: config.server, tenant: 'demo' }} />
  </StrictMode>,
);
