import { useState } from "preact/hooks";
import { html } from "../html.js";

export function Login({ problem, onSubmit }) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    if (!value.trim()) return;
    setBusy(true);
    const ok = await onSubmit(value.trim());
    if (!ok) setBusy(false);
  }
  return html`
    <form class="login" onSubmit=${submit} data-testid="login-form">
      <h1>Lamina</h1>
      <p class="muted">Enter the admin token of this platform. It is in <code>APP_DIR/.lamina/admin-token</code>, or run <code>lamina dashboard</code> to open this page signed in.</p>
      ${problem && html`<p class="error" role="alert" data-testid="login-error">${problem}</p>`}
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" autofocus
        value=${value} onInput=${(e) => setValue(e.target.value)} data-testid="token-input" />
      <button type="submit" disabled=${busy} data-testid="sign-in">${busy ? "Checking…" : "Sign in"}</button>
    </form>
  `;
}
