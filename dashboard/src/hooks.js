import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { NotAvailable } from "./api.js";

export const POLL_MS = 3000;

/**
 * Runs `load()` now and every `intervalMs` while mounted (and again when `deps` change);
 * `{ data, error, unavailable, refresh }`. A NotAvailable endpoint is asked once, not polled.
 */
export function usePoll(load, deps, intervalMs = POLL_MS) {
  const [state, setState] = useState({ data: null, error: null, unavailable: false });
  const generation = useRef(0);
  const run = useCallback(async () => {
    const mine = generation.current;
    try {
      const data = await load();
      if (mine === generation.current) setState({ data, error: null, unavailable: false });
    } catch (error) {
      if (mine !== generation.current) return;
      if (error instanceof NotAvailable) setState({ data: null, error: null, unavailable: true });
      else setState((s) => ({ ...s, error }));
    }
  }, deps);
  useEffect(() => {
    generation.current += 1;
    let stopped = false;
    let timer = null;
    const tick = async () => {
      await run();
      if (!stopped && intervalMs) timer = setTimeout(tick, intervalMs);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [run, intervalMs]);
  return { ...state, refresh: run };
}
