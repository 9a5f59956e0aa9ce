import { h } from "preact";
import htm from "htm";

/** Tagged templates for Preact: html`<p>${text}</p>`. */
export const html = htm.bind(h);
