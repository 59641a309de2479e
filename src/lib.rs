//! image-chat widget (compiled to WebAssembly). Filled in by the widget work; see DESIGN.md.
