import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Unauthorized, api, currentToken, saveToken, whenUnauthorized } from "./api.js";
import { html } from "./html.js";
import { Login } from "./views/login.js";
import { Overview } from "./views/overview.js";
import { Invocations } from "./views/invocations.js";
import { Queues } from "./views/queues.js";
import { ServiceMap } from "./views/map.js";
import "./style.css";

const VIEWS = [
  { path: "overview", title: "Overview", view: Overview },
  { path: "invocations", title: "Invocations", view: Invocations },
  { path: "queues", title: "Queues & dead letters", view: Queues },
  { path: "map", title: "Map", view: ServiceMap },
];

/** `#token=…` (what `lamina dashboard` opens): take the token and wipe it from the URL bar. */
function tokenFromFragment() {
  const match = location.hash.match(/^#token=([^&]*)/);
  if (!match) return null;
  history.replaceState(null, "", `${location.pathname}${location.search}#/overview`);
  return decodeURIComponent(match[1]);
}

function currentPath() {
  const path = location.hash.replace(/^#\/?/, "").split("?")[0];
  return VIEWS.some((v) => v.path === path) ? path : "overview";
}

function App() {
  const [fragmentToken] = useState(tokenFromFragment);
  // "checking": a token from the link or the session is being tried; "in": it works; "out": login.
  const [phase, setPhase] = useState(fragmentToken || currentToken() ? "checking" : "out");
  const [problem, setProblem] = useState(null);
  const [status, setStatus] = useState(null);
  const [path, setPath] = useState(currentPath);

  useEffect(() => {
    const onHash = () => setPath(currentPath());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    whenUnauthorized(() => {
      saveToken(null);
      setProblem("The admin API no longer accepts the saved token. Sign in again.");
      setPhase("out");
    });
    if (phase !== "checking") return;
    const candidate = fragmentToken || currentToken();
    signIn(candidate, fragmentToken ? "from the link" : "saved in this session");
  }, []);

  async function signIn(candidate, where) {
    try {
      const body = await api("/status", { token: candidate });
      saveToken(candidate);
      setStatus(body);
      setProblem(null);
      setPhase("in");
      return true;
    } catch (error) {
      saveToken(null);
      setPhase("out");
      setProblem(
        error instanceof Unauthorized
          ? `The admin API refused the token ${where}. Use the one in APP_DIR/.lamina/admin-token (or LAMINA_ADMIN_TOKEN).`
          : `Cannot sign in: ${error.message}`,
      );
      return false;
    }
  }

  function signOut() {
    saveToken(null);
    setProblem(null);
    setPhase("out");
  }

  if (phase === "checking") return html`<div class="center muted">Connecting…</div>`;
  if (phase === "out") return html`<${Login} problem=${problem} onSubmit=${(t) => signIn(t, "you entered")} />`;

  const current = VIEWS.find((v) => v.path === path);
  const View = current.view;
  return html`
    <header class="top">
      <div class="brand">Lamina <span class="app-name" data-testid="app-name">${status?.app ?? ""}</span></div>
      <nav>
        ${VIEWS.map(
          (v) => html`<a href=${`#/${v.path}`} class=${v.path === path ? "active" : ""} data-testid=${`nav-${v.path}`}>${v.title}</a>`,
        )}
      </nav>
      <button class="link" onClick=${signOut} data-testid="sign-out">Sign out</button>
    </header>
    <main data-testid=${`view-${path}`}>
      <${View} />
    </main>
  `;
}

render(html`<${App} />`, document.getElementById("app"));
