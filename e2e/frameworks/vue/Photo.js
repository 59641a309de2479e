import { defineComponent, h, onBeforeUnmount, onMounted, ref } from 'vue';

// The recipe in docs/WIDGET.md (a render function; in a single-file component the template is
// just `<img ref="img" :src="src" :data-image-chat="imageId" alt="…">`): the <img> is the
// component's root, the widget is mounted once Vue put it in the page and destroyed before
// Vue removes it.
export const Photo = defineComponent({
  props: { ImageChat: Function, src: String, imageId: String, options: Object },
  setup(props) {
    const img = ref(null);
    let chat = null;
    onMounted(() => {
      if (props.ImageChat) chat = props.ImageChat.mount(img.value, { ...props.options, imageId: props.imageId });
    });
    onBeforeUnmount(() => chat?.destroy());
    return () => h('img', { ref: img, src: props.src, alt: 'A valley at dusk', 'data-image-chat': props.imageId });
  },
});
