// The page's only way to the agent: the regular Kubernetes API, with the session cookie and the
// header that lets the cookie count. Lists, watches (NDJSON over a fetch stream, resynced after
// a 410 or a lost stream), logs and reviews all go through here, so RBAC decides what is seen.

const HEADERS = { 'X-Peapod-UI': '1', Accept: 'application/json' };
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 30000;
// A refused kind is listed again in case a RoleBinding grants it later: rarely, and less often
// the longer it stays refused, so that many open pages cost the agent next to nothing.
const FIRST_FORBIDDEN_RETRY_MS = 30000;
const MAX_FORBIDDEN_RETRY_MS = 300000;

export class ApiError extends Error {
  constructor(code, reason, message) {
    super(message || reason || `HTTP ${code}`);
    this.code = code;
    this.reason = reason;
  }
}

/** fetch with the page's credentials; a dead session sends the browser to the login page. */
export async function call(path, options = {}) {
  const headers = { ...HEADERS, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers, credentials: 'same-origin' });
  if (response.status === 401) {
    window.location.assign('/ui/login');
    throw new ApiError(401, 'Unauthorized', 'The session ended.');
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

async function errorOf(response) {
  try {
    const status = await response.json();
    return new ApiError(response.status, status.reason, status.message);
  } catch {
    return new ApiError(response.status, response.statusText, '');
  }
}

export async function getJson(path) {
  return (await call(path)).json();
}

export async function postJson(path, body) {
  const response = await call(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return response.json();
}

const WHO_AM_I_TRIES = 5;

/** Who the session acts as (a SelfSubjectReview), or null when even that is not allowed. */
export async function whoAmI() {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const review = await postJson('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
      });
      return review.status?.userInfo?.username || null;
    } catch (err) {
      // A request lost on the way (ERR_NETWORK_CHANGED while the host's addresses change) is
      // sent again; an answer of the server is final.
      if (err instanceof ApiError || attempt >= WHO_AM_I_TRIES) return null;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}

/** How long reading a fast stream may hold the page before letting it draw and answer. */
const READ_SLICE_MS = 8;

/** Calls onLine(text) for every line of a streamed body until it ends or `signal` aborts. */
export async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  let slice = performance.now();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) onLine(line);
    // Chunks already received resolve read() at once: without a pause here a fast stream
    // would keep the page from drawing and from handling input.
    if (performance.now() - slice > READ_SLICE_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      slice = performance.now();
    }
  }
  pending += decoder.decode();
  if (pending) onLine(pending);
}

function withQuery(path, query) {
  const params = new URLSearchParams(query);
  return `${path}${path.includes('?') ? '&' : '?'}${params}`;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** A resync is needed: the watch's resourceVersion is too old (410 Gone / Expired). */
class Expired extends Error {}

/**
 * Keeps a kind's objects at `path` current: list, then watch from the list's
 * resourceVersion; bookmarks move it on; a 410 relists; a stream that ends or breaks
 * reconnects with a growing backoff; a 403 is listed again every 30 s to 5 min, so rights granted
 * later show without a reload: a 403 on the list is 'forbidden', one on the watch (a user who may
 * list but not watch) is 'unwatchable', the list shown but relisted only that rarely.
 * Callbacks: reset(items) after every list, change(type, object) per event,
 * state('live' | 'retrying' | 'forbidden' | 'unwatchable', detail).
 * Returns a function that stops it.
 */
export function reflect(path, { reset, change, state }) {
  const stopper = new AbortController();
  const { signal } = stopper;
  let resourceVersion = null;
  // A stream that was live is retried at once: browsers drop every stream when the host's
  // addresses change (ERR_NETWORK_CHANGED), and the watch resumes where it was.
  let backoff = 0;
  let forbiddenRetry = FIRST_FORBIDDEN_RETRY_MS;
  // Whether the attempt under way got past its list, to tell a 403 on the watch from one on it.
  let watching = false;

  const onEvent = (line) => {
    if (!line.trim()) return;
    const event = JSON.parse(line);
    const object = event.object || {};
    if (event.type === 'ERROR') {
      if (object.code === 410) throw new Expired();
      throw new ApiError(object.code, object.reason, object.message);
    }
    resourceVersion = object.metadata?.resourceVersion || resourceVersion;
    if (event.type !== 'BOOKMARK') change(event.type, object);
  };

  const cycle = async () => {
    const attempt = new AbortController();
    const abort = () => attempt.abort();
    signal.addEventListener('abort', abort, { once: true });
    watching = false;
    try {
      if (resourceVersion === null) {
        const list = await (await call(path, { signal: attempt.signal })).json();
        resourceVersion = list.metadata?.resourceVersion || '0';
        reset(list.items || []);
      }
      const url = withQuery(path, {
        watch: '1',
        allowWatchBookmarks: 'true',
        resourceVersion,
        timeoutSeconds: String(240 + Math.floor(Math.random() * 120)),
      });
      watching = true;
      const response = await call(url, { signal: attempt.signal });
      backoff = 0;
      forbiddenRetry = FIRST_FORBIDDEN_RETRY_MS;
      state('live');
      await readLines(response, onEvent);
    } finally {
      attempt.abort();
      signal.removeEventListener('abort', abort);
    }
  };

  const retry = async (detail) => {
    if (backoff > 0) state('retrying', detail);
    await sleep(backoff + Math.random() * backoff, signal);
    backoff = Math.min(Math.max(backoff * 2, FIRST_BACKOFF_MS), MAX_BACKOFF_MS);
  };

  (async () => {
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await cycle();
        // A stream that ends at once again and again must not become a busy loop.
        if (Date.now() - started < 1000) await retry('the watch ended at once');
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof Expired || err.code === 410) {
          resourceVersion = null;
        } else if (err.code === 403) {
          state(watching ? 'unwatchable' : 'forbidden', err.message);
          resourceVersion = null;
          await sleep(forbiddenRetry * (1 + Math.random() / 2), signal);
          forbiddenRetry = Math.min(forbiddenRetry * 2, MAX_FORBIDDEN_RETRY_MS);
        } else {
          await retry(err.message);
        }
      }
    }
  })();
  return () => stopper.abort();
}
