// The page: the namespace and selection from the URL (#/ns/<ns>/pod/<name>[/container/<c>]),
// one reflector per watched kind feeding the store, and a redraw per animation frame at most.

import { getJson, reflect, whoAmI } from './api.js';
import { Topology } from './draw.js';
import { KINDS, buildGraph, emptyStore, kindPath } from './model.js';
import { Panel } from './panel.js';

const $ = (selector) => document.querySelector(selector);

/** The selection in a location hash, by position: `#/ns/<ns>/pod/<pod>/container/<c>`. */
function parseHash(hash) {
  let parts;
  try {
    parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  } catch {
    parts = []; // A malformed escape: the default namespace, nothing selected.
  }
  const namespace = parts[0] === 'ns' && parts[1] ? parts[1] : null;
  const pod = namespace && parts[2] === 'pod' && parts[3] ? parts[3] : null;
  const container = pod && parts[4] === 'container' && parts[5] ? parts[5] : null;
  return { namespace: namespace || 'default', pod, container };
}

function hashOf({ namespace, pod, container }) {
  let hash = `#/ns/${encodeURIComponent(namespace)}`;
  if (pod) hash += `/pod/${encodeURIComponent(pod)}`;
  if (pod && container) hash += `/container/${encodeURIComponent(container)}`;
  return hash;
}

class App {
  constructor() {
    this.topology = new Topology($('#topology'), (pod, container) => this.navigate({ ...this.view, pod, container }));
    this.panel = new Panel($('#panel'), () => this.closePanel());
    this.view = null;
    this.stops = [];
    this.frame = 0;
    this.states = new Map();
    window.addEventListener('hashchange', () => this.apply(parseHash(window.location.hash)));
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.view?.pod) this.closePanel();
    });
    $('#namespace-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const namespace = $('#namespace').value.trim();
      if (namespace) this.navigate({ namespace, pod: null, container: null });
    });
  }

  navigate(view) {
    window.location.hash = hashOf(view);
  }

  closePanel() {
    const selected = this.view.container ? `Pod/${this.view.pod}/container/${this.view.container}` : `Pod/${this.view.pod}`;
    this.navigate({ ...this.view, pod: null, container: null });
    this.topology.element(selected)?.focus();
  }

  /** Moves to a namespace and selection, restarting the watches only for a new namespace. */
  apply(view) {
    if (view.namespace !== this.view?.namespace) this.watch(view.namespace);
    const selectionChanged = view.pod !== this.view?.pod || view.container !== this.view?.container
      || view.namespace !== this.view?.namespace;
    this.view = view;
    $('#namespace').value = view.namespace;
    if (!selectionChanged) return;
    this.topology.select(view.pod ? `Pod/${view.pod}${view.container ? `/container/${view.container}` : ''}` : null);
    document.body.classList.toggle('with-panel', Boolean(view.pod));
    if (view.pod) {
      this.panel.show(view, this.store.pods.get(view.pod) || null);
      this.panel.focus();
    } else {
      this.panel.close();
    }
  }

  watch(namespace) {
    for (const stop of this.stops.splice(0)) stop();
    this.store = emptyStore();
    this.states.clear();
    this.loaded = new Set();
    document.title = `${namespace} · peapod`;
    $('#status').textContent = `Loading ${namespace}…`;
    for (const kind of KINDS) {
      const objects = this.store[kind.name];
      this.stops.push(reflect(kindPath(kind, namespace), {
        reset: (items) => {
          objects.clear();
          for (const item of items) objects.set(item.metadata.name, item);
          this.loaded.add(kind.name);
          this.changed();
        },
        change: (type, object) => {
          if (type === 'DELETED') objects.delete(object.metadata.name);
          else objects.set(object.metadata.name, object);
          this.changed();
        },
        state: (state, detail) => this.noteState(kind, state, detail),
      }));
    }
    this.changed();
  }

  /**
   * Quiet notes for kinds the user may not list, kinds listed but not watched, and watches that
   * are reconnecting. A kind that turns forbidden shows nothing of what it showed before.
   */
  noteState(kind, state, detail) {
    this.states.set(kind.name, { state, detail });
    const inState = (wanted) => KINDS.map((k) => k.name).filter((name) => this.states.get(name)?.state === wanted);
    const forbidden = inState('forbidden');
    const unwatched = inState('unwatchable');
    const retrying = inState('retrying');
    const notes = [];
    if (forbidden.length) notes.push(`Not shown (you may not list them here): ${forbidden.join(', ')}.`);
    if (unwatched.length) notes.push(`${unwatched.join(', ')}: not updated live: you may not watch them.`);
    if (retrying.length) notes.push(`Reconnecting: ${retrying.join(', ')}…`);
    $('#notes').textContent = notes.join(' ');
    $('#notes').title = [...this.states].filter(([, s]) => s.detail).map(([name, s]) => `${name}: ${s.detail}`).join('\n');
    if (state === 'forbidden') {
      this.store[kind.name].clear();
      this.loaded.add(kind.name);
      this.changed();
    }
  }

  changed() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.redraw();
    });
  }

  redraw() {
    const graph = buildGraph(this.store);
    this.topology.render(graph);
    if (this.view?.pod) this.panel.update(this.store.pods.get(this.view.pod) || null);
    const waiting = this.loaded.size < KINDS.length;
    const empty = graph.pods.length + graph.owners.length + graph.services.length + graph.routes.length === 0;
    $('#status').textContent = waiting && empty ? `Loading ${this.view.namespace}…`
      : empty ? `Nothing to show in namespace ${this.view.namespace}.` : '';
  }
}

async function fillHeader() {
  const user = await whoAmI();
  if (user) {
    $('#user').textContent = user;
    $('#signed-in').hidden = false;
  }
  try {
    const namespaces = await getJson('/api/v1/namespaces');
    $('#namespaces').replaceChildren(...namespaces.items.map((n) => new Option(n.metadata.name)));
  } catch {
    // Namespaces the user may not list are typed in instead.
  }
}

const app = new App();
app.apply(parseHash(window.location.hash));
fillHeader();
