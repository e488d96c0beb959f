// The side panel of a selection: a container's followed logs and events, or a pod's
// conditions, events and YAML. Logs stream through fetch and keep at most MAX_LOG_LINES lines
// in the DOM, so a huge or fast log never freezes the page.

import { ApiError, call, readLines, reflect } from './api.js';
import { el } from './dom.js';
import { toYaml } from './yaml.js';

const MAX_LOG_LINES = 5000;
const MAX_LOG_BACKOFF_MS = 5000;
/** How often new log lines reach the DOM: a fast log is drawn in few large steps. */
const LOG_FLUSH_MS = 100;

function podPath(namespace, pod) {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`;
}

function when(event) {
  return event.lastTimestamp || event.eventTime || event.firstTimestamp || event.metadata?.creationTimestamp || '';
}

/** A timestamp as the local time of day, the whole timestamp in its tooltip. */
function clock(timestamp) {
  if (!timestamp) return '';
  return el('time', { datetime: timestamp, title: timestamp }, new Date(timestamp).toLocaleTimeString());
}

function table(caption, headings, rows) {
  const cell = (value) => el('td', {}, value instanceof Node ? value : String(value ?? ''));
  return el('table', {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((row) => el('tr', {}, row.map(cell)))));
}

/** A followed log: lines appended once per frame, the oldest dropped past MAX_LOG_LINES. */
class LogView {
  constructor(element) {
    this.element = element;
    this.pending = [];
    this.frame = 0;
  }

  add(line) {
    this.pending.push(line);
    if (this.pending.length > 2 * MAX_LOG_LINES) this.pending.splice(0, this.pending.length - MAX_LOG_LINES);
    if (!this.frame) this.frame = setTimeout(() => requestAnimationFrame(() => this.flush()), LOG_FLUSH_MS);
  }

  note(text) {
    this.add({ note: text });
  }

  flush() {
    this.frame = 0;
    const lines = this.pending.slice(-MAX_LOG_LINES);
    this.pending = [];
    const view = this.element;
    const atEnd = view.scrollHeight - view.scrollTop - view.clientHeight < 24;
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      const div = document.createElement('div');
      if (typeof line === 'object') {
        div.className = 'log-note';
        div.textContent = line.note;
      } else {
        div.textContent = line;
      }
      fragment.append(div);
    }
    view.append(fragment);
    for (let extra = view.childElementCount - MAX_LOG_LINES; extra > 0; extra -= 1) view.firstElementChild.remove();
    if (atEnd) view.scrollTop = view.scrollHeight;
  }
}

/** The selection's panel inside `root`; `onClose` runs when the user closes it. */
export class Panel {
  constructor(root, onClose) {
    this.root = root;
    this.onClose = onClose;
    this.stops = [];
    this.selection = null;
  }

  /** Shows `selection` ({namespace, pod, container}) for `podObject` (null: not (yet) seen). */
  show(selection, podObject) {
    this.clear();
    this.selection = selection;
    this.root.hidden = false;
    const { pod, container } = selection;
    const title = container ? `Container ${container} of pod ${pod}` : `Pod ${pod}`;
    const close = el('button', { type: 'button', class: 'close', 'aria-label': 'Close the panel' }, '×');
    close.addEventListener('click', () => this.onClose());
    this.body = el('div', { class: 'panel-body' });
    this.heading = el('h2', { id: 'panel-title', tabindex: -1 }, title);
    this.root.replaceChildren(el('header', {}, this.heading, close), this.body);
    this.root.setAttribute('aria-labelledby', 'panel-title');
    if (container) this.showContainer(selection, podObject);
    else this.showPod(podObject);
    this.watchEvents(selection, podObject);
  }

  /** Moves the keyboard to the panel, as it opens. */
  focus() {
    this.heading?.focus();
  }

  clear() {
    for (const stop of this.stops.splice(0)) stop();
    this.selection = null;
    this.uid = null;
    this.shownVersion = null;
    this.lastStamp = null;
    this.shownAtLastStamp = 0;
    this.overlap = null;
    this.logBackoff = 0;
  }

  close() {
    this.clear();
    this.heading = null;
    this.root.hidden = true;
    this.root.replaceChildren();
  }

  /** Keeps the panel in step with the selected pod's latest object. */
  update(podObject) {
    if (!this.selection) return;
    if (podObject && podObject.metadata.uid !== this.uid) {
      this.show(this.selection, podObject);
      return;
    }
    if (this.selection.container) {
      if (podObject) this.followRestart(podObject);
      return;
    }
    this.fillPod(podObject);
  }

  showPod(podObject) {
    this.conditions = el('div', { class: 'conditions' });
    this.yaml = el('pre', { class: 'yaml', tabindex: 0, 'aria-label': 'The pod as YAML' });
    this.events = el('div', { class: 'events' });
    this.body.append(this.conditions, this.events, el('h3', {}, 'YAML'), this.yaml);
    this.fillPod(podObject);
  }

  fillPod(podObject) {
    if (!podObject) {
      this.shownVersion = null;
      this.yaml.textContent = 'This pod is not (or no longer) in the namespace.';
      return;
    }
    if (podObject.metadata.resourceVersion === this.shownVersion) return;
    this.shownVersion = podObject.metadata.resourceVersion;
    const conditions = (podObject.status?.conditions || []).map((c) => [c.type, c.status, clock(c.lastTransitionTime), c.reason, c.message]);
    this.conditions.replaceChildren(table('Conditions', ['Type', 'Status', 'Since', 'Reason', 'Message'], conditions));
    const { managedFields, ...metadata } = podObject.metadata;
    this.yaml.textContent = toYaml({ ...podObject, metadata });
  }

  showContainer(selection, podObject) {
    const follow = el('input', { type: 'checkbox', id: 'follow' });
    follow.checked = true;
    follow.addEventListener('change', () => (follow.checked ? this.openLog() : this.stopLog()));
    const logs = el('div', { class: 'log', role: 'log', tabindex: 0, 'aria-label': `Logs of ${selection.container}` });
    this.events = el('div', { class: 'events' });
    this.follow = follow;
    this.logView = new LogView(logs);
    this.body.append(
      el('div', { class: 'log-controls' }, follow, el('label', { for: 'follow' }, 'Follow the log')),
      logs, this.events,
    );
    this.stops.push(() => this.stopLog());
    this.restarts = this.statusOf(podObject)?.restartCount ?? 0;
    this.openLog();
  }

  statusOf(podObject) {
    const statuses = [...(podObject?.status?.containerStatuses || []), ...(podObject?.status?.initContainerStatuses || [])];
    return statuses.find((s) => s.name === this.selection.container);
  }

  /** A restarted (or a late starting) container's new log is followed as soon as it runs. */
  followRestart(podObject) {
    const status = this.statusOf(podObject);
    const restarts = status?.restartCount ?? 0;
    const restarted = restarts !== this.restarts;
    this.restarts = restarts;
    if (!this.follow.checked || !status?.state?.running) return;
    if (restarted) this.logView.note(`— the container restarted (${restarts} restarts) —`);
    if (restarted || !this.logOpen) this.openLog();
  }

  /**
   * Follows the log: its last MAX_LOG_LINES lines, or (`resume`) the lines after the last one
   * shown, after a stream the network dropped. Lines carry their timestamps, so none shows twice:
   * a new stream skips the lines older than the last one shown and as many lines of its
   * timestamp as were shown already (a log can write several lines within one timestamp).
   */
  openLog(resume = false) {
    this.stopLog();
    const { namespace, pod, container } = this.selection;
    const stopper = new AbortController();
    this.stopLogStream = () => stopper.abort();
    const query = new URLSearchParams({ container, follow: 'true', timestamps: 'true' });
    if (resume && this.lastStamp) query.set('sinceTime', this.lastStamp);
    else query.set('tailLines', String(MAX_LOG_LINES));
    const view = this.logView;
    this.overlap = this.lastStamp ? { stamp: this.lastStamp, skip: this.shownAtLastStamp } : null;
    this.logOpen = true;
    (async () => {
      try {
        const response = await call(`${podPath(namespace, pod)}/log?${query}`, { signal: stopper.signal, headers: { Accept: '*/*' } });
        this.logBackoff = 0;
        await readLines(response, (line) => this.showLine(line));
        view.note('— the log stream ended —');
      } catch (err) {
        if (stopper.signal.aborted) return;
        if (err instanceof ApiError) {
          view.note(`— no log: ${err.message} —`);
        } else {
          setTimeout(() => { if (!stopper.signal.aborted) this.openLog(true); }, this.logBackoff);
          this.logBackoff = Math.min(Math.max(this.logBackoff * 2, 250), MAX_LOG_BACKOFF_MS);
        }
      } finally {
        if (!stopper.signal.aborted) this.logOpen = false;
      }
    })();
  }

  /** One `<timestamp> <text>` line of the log, unless it was shown already. */
  showLine(line) {
    const space = line.indexOf(' ');
    const stamp = line.slice(0, space);
    if (this.overlap) {
      if (stamp < this.overlap.stamp) return;
      if (stamp === this.overlap.stamp && this.overlap.skip > 0) {
        this.overlap.skip -= 1;
        return;
      }
      this.overlap = null;
    }
    if (stamp === this.lastStamp) this.shownAtLastStamp += 1;
    else this.shownAtLastStamp = 1;
    this.lastStamp = stamp;
    this.logView.add(line.slice(space + 1));
  }

  stopLog() {
    this.stopLogStream?.();
    this.stopLogStream = null;
    this.logOpen = false;
  }

  watchEvents(selection, podObject) {
    this.uid = podObject?.metadata?.uid || null;
    if (!this.uid) return;
    const events = new Map();
    const fieldPaths = selection.container
      ? [`spec.containers{${selection.container}}`, `spec.initContainers{${selection.container}}`] : null;
    const render = () => {
      const rows = [...events.values()]
        .filter((e) => !fieldPaths || fieldPaths.includes(e.involvedObject?.fieldPath))
        .sort((a, b) => when(a).localeCompare(when(b)))
        .map((e) => [clock(when(e)), e.type, e.reason, e.count || 1, e.message]);
      this.events.replaceChildren(table('Events', ['Last seen', 'Type', 'Reason', 'Count', 'Message'], rows));
    };
    const path = `/api/v1/namespaces/${encodeURIComponent(selection.namespace)}/events?fieldSelector=${encodeURIComponent(`involvedObject.uid=${this.uid}`)}`;
    this.stops.push(reflect(path, {
      reset: (items) => { events.clear(); for (const e of items) events.set(e.metadata.name, e); render(); },
      change: (type, e) => { if (type === 'DELETED') events.delete(e.metadata.name); else events.set(e.metadata.name, e); render(); },
      state: (state, detail) => {
        if (state === 'forbidden') this.events.replaceChildren(el('p', { class: 'note' }, `Events are not visible to you: ${detail}`));
      },
    }));
  }
}
