// Calls to the admin API. Every call sends the admin token; the page itself holds no data.

/** The admin API refused the token (HTTP 401). */
export class Unauthorized extends Error {}

/** The endpoint does not exist on this platform (a plain 404: not part of this version). */
export class NotAvailable extends Error {}

/** Any other failure, with the API's own message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const KEY = "lamina.token";
let token = sessionStorage.getItem(KEY);
let onUnauthorized = () => {};

export function currentToken() {
  return token;
}

export function saveToken(value) {
  token = value;
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

/** Called with the error when a call with the saved token gets a 401 (token rotated, ...). */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/**
 * `api("/status")`, `api("/dlq/redrive", { method: "POST", body: {...} })`: the parsed JSON.
 * `token` overrides the saved token (the login form checks a token before saving it).
 */
export async function api(path, { method = "GET", body, token: given } = {}) {
  const headers = { Authorization: `Bearer ${given ?? token ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, `cannot reach the admin API: ${error.message}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    const error = new Unauthorized(data?.message ?? "the admin API refused the token");
    if (given === undefined) onUnauthorized(error);
    throw error;
  }
  // Lamina's own 404s carry {"message"}; a route this platform does not have answers plain text.
  if (response.status === 404 && !(data && typeof data === "object" && "message" in data)) {
    throw new NotAvailable(`${path.split("?")[0]} is not available on this platform`);
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.message ?? `${response.status} ${text.slice(0, 200)}`);
  }
  return data;
}

export function query(params) {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return entries.length ? "?" + new URLSearchParams(entries).toString() : "";
}
