import { createApp, h, ref } from 'vue';
import { Photo } from './Photo.js';
import { config, loadImageChat } from '../load.js';

// The image is a bare child of a Vue-managed parent (the Photo component's root, under a
// v-if), with conditional siblings; the test drives the state through window.__app.
const ImageChat = await loadImageChat(config.server, config.mode);
const options = { server: config.server, tenant: 'demo' };

const App = {
  setup() {
    const flag = ref(false);
    const show = ref(true);
    const src = ref('/photo.svg');
    const path = ref(location.pathname);
    addEventListener('popstate', () => { path.value = location.pathname; });
    window.__app = {
      setFlag: (v) => { flag.value = v; },
      setShow: (v) => { show.value = v; },
      setSrc: (v) => { src.value = v; },
      go(p) { history.pushState(null, '', p); path.value = p; },
    };
    return () => h('main', [
      h('h1', 'Valley'),
      path.value === '/about'
        ? h('p', { id: 'about' }, 'About this site.')
        : h('div', { id: 'parent' }, [
          flag.value ? h('b', { id: 'before' }, 'New photo of the day!') : null,
          show.value ? h(Photo, { ImageChat, src: src.value, imageId: config.image, options }) : null,
          flag.value ? h('p', { id: 'after' }, 'Taken at dusk.') : null,
        ]),
    ]);
  },
};

createApp(App).mount('#app');
