// The graph as DOM boxes in layers (routes, services, owners, controllers, pods) with SVG edges
// between them. A redraw rebuilds only the boxes whose view changed and keeps focus and
// selection on the box they were on.

import { el } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
/** The id of the hidden text that tells keyboard users what Enter does on a pod or container. */
const HINT_ID = 'topology-hint';

const LAYERS = [
  { name: 'routes', title: 'Ingress routes' },
  { name: 'services', title: 'Services' },
  { name: 'owners', title: 'Workloads' },
  { name: 'controllers', title: 'ReplicaSets and Jobs' },
  { name: 'pods', title: 'Pods' },
];

function list(className, items, label) {
  if (!items.length) return null;
  return el('ul', { class: className, 'aria-label': label }, items.map((item) => el('li', {}, item)));
}

function routeBox(route) {
  return el('div', {
    class: 'box route', 'data-key': route.key, 'data-route': `${route.ingress}/${route.host}${route.path}`,
    role: 'group', 'aria-label': `Ingress ${route.ingress}: ${route.host}${route.path} to Service ${route.service || 'none'}`,
  },
  el('span', { class: 'kind' }, 'Ingress ', route.ingress),
  el('strong', {}, route.host, route.path),
  el('span', { class: 'detail' }, '→ ', route.service || '(no service)', route.port !== '' ? `:${route.port}` : ''));
}

function serviceBox(service) {
  return el('div', {
    class: `box service${service.missing ? ' missing' : ''}`, 'data-key': service.key, 'data-service': service.name,
    role: 'group', 'aria-label': `Service ${service.name}${service.missing ? ' (not found)' : `, ${service.type} ${service.clusterIP}`}`,
  },
  el('span', { class: 'kind' }, 'Service', service.type ? ` · ${service.type}` : ''),
  el('strong', {}, service.name),
  el('span', { class: 'detail' }, service.missing ? 'not found' : service.clusterIP),
  list('ports', service.ports, 'ports'));
}

function ownerBox(owner) {
  return el('div', {
    class: `box owner kind-${owner.kind}${owner.missing ? ' missing' : ''}`, 'data-key': owner.key,
    'data-owner': `${owner.kind}/${owner.name}`, role: 'group', 'aria-label': `${owner.kind} ${owner.name}, ${owner.summary || owner.detail}`,
  },
  el('span', { class: 'kind' }, owner.kind),
  el('strong', {}, owner.name),
  el('span', { class: 'summary' }, owner.summary),
  el('span', { class: 'detail' }, owner.detail));
}

function roleLabel(container) {
  return container.role === 'container' ? 'container' : `${container.role} ${container.order}`;
}

function containerBox(pod, c) {
  const mounts = c.mounts.map((m) => `${m.volume} → ${m.path}${m.readOnly ? ' (read-only)' : ''}`);
  return el('li', {
    class: `container role-${c.role} state-${c.state}${c.ready ? ' ready' : ''}`,
    'data-key': `${pod.key}/container/${c.name}`, 'data-container': c.name,
    'data-restarts': c.restarts, 'data-ready': String(c.ready), tabindex: 0, 'aria-describedby': HINT_ID,
    'aria-label': `${roleLabel(c)} ${c.name}: ${c.stateDetail}, ${c.ready ? 'ready' : 'not ready'}, ${c.restarts} restarts, image ${c.image}`,
  },
  el('div', { class: 'c-head' }, el('span', { class: 'role' }, roleLabel(c)), el('strong', {}, c.name)),
  el('div', { class: 'c-state' },
    el('span', { class: 'state' }, c.stateDetail),
    el('span', { class: `badge ${c.ready ? 'ok' : 'no'}` }, c.ready ? 'ready' : 'not ready'),
    el('span', { class: 'restarts' }, `${c.restarts} restart${c.restarts === 1 ? '' : 's'}`)),
  el('div', { class: 'image' }, c.image),
  list('ports', c.ports, 'ports'),
  list('probes', c.probes, 'probes'),
  list('mounts', mounts, 'mounts'));
}

function volumeBox(pod, volume) {
  return el('li', {
    class: `volume type-${volume.type}`, 'data-key': `${pod.key}/volume/${volume.name}`,
    'data-volume': volume.name, 'data-mounted-by': volume.mountedBy.join(' '),
    'aria-label': `Volume ${volume.name} (${volume.type}), mounted by ${volume.mountedBy.join(', ') || 'no container'}`,
  },
  el('strong', {}, volume.name),
  el('span', { class: 'detail' }, volume.type, volume.detail ? `: ${volume.detail}` : ''));
}

function svgLayer(className) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', className);
  svg.setAttribute('aria-hidden', 'true');
  return svg;
}

function podBox(pod) {
  const facts = [
    ['IP', pod.ip || 'none yet'], ['hostname', pod.hostname], ['shares', pod.shared.join(', ')],
    ['QoS', pod.qos || '—'], ['node', pod.node || '—'],
  ];
  return el('article', {
    class: `box pod phase-${pod.phase.toLowerCase()}`, 'data-key': pod.key, 'data-pod': pod.name,
    'data-pod-ip': pod.ip, tabindex: 0, 'aria-describedby': HINT_ID,
    'aria-label': `Pod ${pod.name}, ${pod.status}, IP ${pod.ip || 'none'}, ${pod.containers.length} containers`,
  },
  el('header', { class: 'pod-head' }, el('span', { class: 'kind' }, 'Pod'), el('strong', {}, pod.name),
    el('span', { class: 'status' }, pod.status)),
  el('div', { class: 'sandbox' },
    el('dl', { class: 'facts' }, facts.map(([name, value]) => [el('dt', {}, name), el('dd', {}, value)])),
    svgLayer('mounts'),
    el('ol', { class: 'containers', 'aria-label': 'containers' }, pod.containers.map((c) => containerBox(pod, c))),
    pod.volumes.length ? el('ul', { class: 'volumes', 'aria-label': 'volumes' }, pod.volumes.map((v) => volumeBox(pod, v))) : null));
}

const BUILDERS = { routes: routeBox, services: serviceBox, owners: ownerBox, controllers: ownerBox, pods: podBox };

function curve(from, to, box) {
  const x1 = from.left + from.width / 2 - box.left;
  const y1 = from.bottom - box.top;
  const x2 = to.left + to.width / 2 - box.left;
  const y2 = to.top - box.top;
  const middle = (y1 + y2) / 2;
  return `M${x1},${y1} C${x1},${middle} ${x2},${middle} ${x2},${y2}`;
}

/**
 * What `pathsInto` draws into `svg`: the frame's size and the curves between the pairs' boxes.
 * Reads the layout only, so that many can be measured before any is drawn.
 */
function measure(svg, frame, pairs, size) {
  const box = frame.getBoundingClientRect();
  const paths = pairs.map(({ from, to, kind }) => ({
    d: curve(from.getBoundingClientRect(), to.getBoundingClientRect(), box), kind,
  }));
  return { svg, width: size.width, height: size.height, paths };
}

/** Draws what `measure` found; writes only. */
function pathsInto({ svg, width, height, paths }) {
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.replaceChildren(...paths.map(({ d, kind }) => {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    path.setAttribute('class', `edge ${kind}`);
    return path;
  }));
}

/** Volume → container pairs inside one pod's sandbox. */
function mountPairs(sandbox) {
  const pairs = [];
  for (const volume of sandbox.querySelectorAll('[data-volume]')) {
    for (const name of volume.dataset.mountedBy.split(' ').filter(Boolean)) {
      const container = sandbox.querySelector(`[data-container="${CSS.escape(name)}"]`);
      if (container) pairs.push({ from: container, to: volume, kind: 'mount' });
    }
  }
  return pairs;
}

/** The picture of one namespace inside `root`. */
export class Topology {
  constructor(root, onSelect) {
    this.root = root;
    this.boxes = new Map();
    this.edges = [];
    this.selected = null;
    this.edgeFrame = 0;
    this.svg = svgLayer('edges');
    // Pods whose mount lines must be drawn again: built anew, or resized.
    this.staleMounts = new Set();
    this.podResizes = new ResizeObserver((entries) => {
      for (const entry of entries) this.staleMounts.add(entry.target);
      this.scheduleEdges();
    });
    this.layers = LAYERS.map((layer) => {
      const row = el('div', { class: 'row' });
      const section = el('section', { class: `layer layer-${layer.name}`, 'aria-label': layer.title, hidden: true },
        el('h2', {}, layer.title), row);
      return { ...layer, section, row };
    });
    const hint = el('p', { id: HINT_ID, hidden: true }, 'Enter: details');
    root.replaceChildren(this.svg, hint, ...this.layers.map((layer) => layer.section));
    root.addEventListener('click', (event) => this.pick(event.target));
    root.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        if (this.pick(event.target)) event.preventDefault();
      }
    });
    new ResizeObserver(() => this.scheduleEdges()).observe(root);
    this.onSelect = onSelect;
  }

  pick(target) {
    const hit = target.closest('[data-container], [data-pod]');
    if (!hit || !this.root.contains(hit)) return false;
    const pod = hit.closest('[data-pod]').dataset.pod;
    this.onSelect(pod, hit.dataset.container || null);
    return true;
  }

  /** Shows `graph`, rebuilding only the boxes whose view changed. */
  render(graph) {
    const focusedKey = document.activeElement?.closest?.('[data-key]')?.dataset.key;
    const seen = new Set();
    for (const layer of this.layers) {
      const items = graph[layer.name];
      layer.section.hidden = items.length === 0;
      let cursor = layer.row.firstChild;
      for (const item of items) {
        seen.add(item.key);
        const atCursor = cursor?.dataset.key === item.key;
        const box = this.box(item, BUILDERS[layer.name]);
        if (atCursor) cursor = box.nextSibling;
        else layer.row.insertBefore(box, cursor);
      }
    }
    for (const [key, { element }] of this.boxes) {
      if (!seen.has(key)) {
        element.remove();
        this.forget(element);
        this.boxes.delete(key);
      }
    }
    this.edges = graph.edges;
    this.markSelected();
    if (focusedKey && !document.activeElement?.closest?.('[data-key]')) {
      this.root.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
    }
    this.scheduleEdges();
  }

  box(item, build) {
    const signature = JSON.stringify(item);
    const known = this.boxes.get(item.key);
    if (known && known.signature === signature) return known.element;
    const element = build(item);
    if (known) {
      known.element.replaceWith(element);
      this.forget(known.element);
    }
    if (element.classList.contains('pod')) {
      this.staleMounts.add(element);
      this.podResizes.observe(element);
    }
    this.boxes.set(item.key, { element, signature });
    return element;
  }

  /** Stops following a box that left the picture. */
  forget(element) {
    this.podResizes.unobserve(element);
    this.staleMounts.delete(element);
  }

  /** Marks the selected pod or container (`Pod/<name>[/container/<c>]`), or nothing. */
  select(key) {
    this.selected = key;
    this.markSelected();
  }

  markSelected() {
    for (const node of this.root.querySelectorAll('.selected')) {
      node.classList.remove('selected');
      node.removeAttribute('aria-current');
    }
    if (!this.selected) return;
    const node = this.root.querySelector(`[data-key="${CSS.escape(this.selected)}"]`);
    node?.classList.add('selected');
    node?.setAttribute('aria-current', 'true');
  }

  /** The focusable box of a key, for giving focus back after the panel closes. */
  element(key) {
    return this.root.querySelector(`[data-key="${CSS.escape(key)}"]`);
  }

  scheduleEdges() {
    if (this.edgeFrame) return;
    this.edgeFrame = requestAnimationFrame(() => {
      this.edgeFrame = 0;
      this.drawEdges();
    });
  }

  /** The edges between boxes, and the mount lines of the pods that changed: all reads, then all writes. */
  drawEdges() {
    const find = (key) => this.boxes.get(key)?.element;
    const pairs = this.edges.map((edge) => ({ from: find(edge.from), to: find(edge.to), kind: edge.kind }))
      .filter((pair) => pair.from?.isConnected && pair.to?.isConnected);
    const pods = [...this.staleMounts].filter((pod) => pod.isConnected);
    this.staleMounts.clear();
    // The old drawing must not hold the frame at its old size while it is measured.
    this.svg.setAttribute('width', '0');
    this.svg.setAttribute('height', '0');
    const size = { width: this.root.scrollWidth, height: this.root.scrollHeight };
    const drawings = [measure(this.svg, this.root, pairs, size)];
    for (const pod of pods) {
      const sandbox = pod.querySelector('.sandbox');
      const svg = sandbox.querySelector(':scope > svg.mounts');
      // The sandbox's padding box: where the absolutely placed drawing fits without growing it.
      const inner = { width: sandbox.clientWidth, height: sandbox.clientHeight };
      drawings.push(measure(svg, sandbox, mountPairs(sandbox), inner));
    }
    for (const drawing of drawings) pathsInto(drawing);
  }
}
