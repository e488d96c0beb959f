// The namespace's objects as the picture's graph: plain view objects per layer (routes,
// services, owners, pods) and the edges between them. Pure functions of the store, so a redraw
// can compare what each box shows with what it showed before.

/** The kinds the page watches, with their API paths in a namespace. */
export const KINDS = [
  { name: 'pods', kind: 'Pod', group: '', base: '/api/v1' },
  { name: 'replicasets', kind: 'ReplicaSet', group: 'apps', base: '/apis/apps/v1' },
  { name: 'deployments', kind: 'Deployment', group: 'apps', base: '/apis/apps/v1' },
  { name: 'statefulsets', kind: 'StatefulSet', group: 'apps', base: '/apis/apps/v1' },
  { name: 'daemonsets', kind: 'DaemonSet', group: 'apps', base: '/apis/apps/v1' },
  { name: 'jobs', kind: 'Job', group: 'batch', base: '/apis/batch/v1' },
  { name: 'cronjobs', kind: 'CronJob', group: 'batch', base: '/apis/batch/v1' },
  { name: 'services', kind: 'Service', group: '', base: '/api/v1' },
  { name: 'endpointslices', kind: 'EndpointSlice', group: 'discovery.k8s.io', base: '/apis/discovery.k8s.io/v1' },
  { name: 'ingresses', kind: 'Ingress', group: 'networking.k8s.io', base: '/apis/networking.k8s.io/v1' },
];

export function kindPath(kind, namespace) {
  return `${kind.base}/namespaces/${encodeURIComponent(namespace)}/${kind.name}`;
}

/** One Map (name → object) per watched kind. */
export function emptyStore() {
  return Object.fromEntries(KINDS.map((kind) => [kind.name, new Map()]));
}

const TOP_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob']);

/** The ownerReference marked as the controller, as kube's GetControllerOf: no other counts. */
function controllerOf(object) {
  return (object.metadata?.ownerReferences || []).find((ref) => ref.controller === true) || null;
}

/** The API group of an apiVersion: `apps/v1` → `apps`, the core `v1` → ''. */
function groupOf(apiVersion) {
  const slash = (apiVersion || '').indexOf('/');
  return slash >= 0 ? apiVersion.slice(0, slash) : '';
}

/** A kind's object's key: `Kind/name` for the core group, `Kind.group/name` for the others. */
function keyOf(kind, group, name) {
  return `${kind}${group ? `.${group}` : ''}/${name}`;
}

function refKey(ref) {
  return keyOf(ref.kind, groupOf(ref.apiVersion), ref.name);
}

/** What an owner box says about its object's progress. */
function ownerSummary(kind, object) {
  if (!object) return '';
  const spec = object?.spec || {};
  const status = object?.status || {};
  switch (kind) {
    case 'Deployment':
    case 'ReplicaSet':
    case 'StatefulSet':
      return `${status.readyReplicas || 0}/${spec.replicas ?? 1} ready`;
    case 'DaemonSet':
      return `${status.numberReady || 0}/${status.desiredNumberScheduled || 0} ready`;
    case 'Job':
      return `${status.succeeded || 0}/${spec.completions ?? 1} done`
        + (status.active ? `, ${status.active} active` : '')
        + (status.failed ? `, ${status.failed} failed` : '');
    case 'CronJob':
      return `${spec.schedule || ''}${spec.suspend ? ' (suspended)' : ''}`;
    default:
      return '';
  }
}

function ownerDetail(kind, object) {
  if (!object) return 'not visible';
  const annotations = object.metadata?.annotations || {};
  if (kind === 'ReplicaSet' && annotations['deployment.kubernetes.io/revision']) {
    return `revision ${annotations['deployment.kubernetes.io/revision']}`;
  }
  const images = (object.spec?.template?.spec?.containers || []).map((c) => c.image);
  return images.join(', ');
}

function ownerNode(kind, group, name, object, parent) {
  return {
    key: keyOf(kind, group, name),
    kind,
    name,
    summary: ownerSummary(kind, object),
    detail: ownerDetail(kind, object),
    missing: !object,
    parent,
  };
}

/** A ReplicaSet left behind by a rollout: scaled to zero and empty. */
function isRetired(replicaSet, podsByOwner) {
  return (replicaSet.spec?.replicas ?? 1) === 0 && !replicaSet.status?.replicas
    && !podsByOwner.has(keyOf('ReplicaSet', 'apps', replicaSet.metadata.name));
}

const OWNER_KINDS = ['deployments', 'statefulsets', 'daemonsets', 'cronjobs', 'jobs']
  .map((name) => KINDS.find((kind) => kind.name === name));

/** The watched object an ownerReference names, if its kind is one the page watches. */
function referenced(store, ref) {
  const group = groupOf(ref.apiVersion);
  const kind = KINDS.find((k) => k.kind === ref.kind && k.group === group);
  return kind ? store[kind.name].get(ref.name) || null : null;
}

function collectOwners(store) {
  const owners = new Map();
  const add = (kind, group, name, object) => {
    const key = keyOf(kind, group, name);
    const known = owners.get(key);
    if (known && !known.missing) return known;
    const ref = object ? controllerOf(object) : null;
    const node = ownerNode(kind, group, name, object, ref ? refKey(ref) : null);
    owners.set(key, node);
    if (ref && !owners.has(node.parent)) add(ref.kind, groupOf(ref.apiVersion), ref.name, null);
    return node;
  };
  const podsByOwner = new Set();
  for (const pod of store.pods.values()) {
    const ref = controllerOf(pod);
    if (ref) podsByOwner.add(refKey(ref));
  }
  for (const kind of OWNER_KINDS) {
    for (const object of store[kind.name].values()) add(kind.kind, kind.group, object.metadata.name, object);
  }
  for (const replicaSet of store.replicasets.values()) {
    if (!isRetired(replicaSet, podsByOwner)) add('ReplicaSet', 'apps', replicaSet.metadata.name, replicaSet);
  }
  for (const pod of store.pods.values()) {
    const ref = controllerOf(pod);
    if (ref && !owners.has(refKey(ref))) add(ref.kind, groupOf(ref.apiVersion), ref.name, referenced(store, ref));
  }
  return owners;
}

function describeProbe(probe) {
  const action = probe.httpGet ? `HTTP GET :${probe.httpGet.port}${probe.httpGet.path || '/'}`
    : probe.tcpSocket ? `TCP :${probe.tcpSocket.port}`
      : probe.grpc ? `gRPC :${probe.grpc.port}`
        : probe.exec ? `exec ${(probe.exec.command || []).join(' ')}` : 'unknown';
  return `${action} every ${probe.periodSeconds || 10}s`;
}

function probesOf(container) {
  return ['startup', 'liveness', 'readiness']
    .filter((name) => container[`${name}Probe`])
    .map((name) => `${name}: ${describeProbe(container[`${name}Probe`])}`);
}

function stateOf(status) {
  const state = status?.state || {};
  if (state.running) return { name: 'running', detail: 'running' };
  if (state.waiting) return { name: 'waiting', detail: state.waiting.reason || 'waiting' };
  if (state.terminated) {
    const { reason, exitCode } = state.terminated;
    return { name: 'terminated', detail: `${reason || 'terminated'} (exit ${exitCode})` };
  }
  return { name: 'waiting', detail: 'not started' };
}

function containerView(container, role, status, order) {
  const state = stateOf(status);
  return {
    name: container.name,
    role,
    order,
    image: container.image,
    state: state.name,
    stateDetail: state.detail,
    ready: Boolean(status?.ready),
    restarts: status?.restartCount || 0,
    ports: (container.ports || []).map((p) => `${p.name ? `${p.name} ` : ''}${p.containerPort}/${p.protocol || 'TCP'}`),
    probes: probesOf(container),
    mounts: (container.volumeMounts || []).map((m) => ({
      volume: m.name, path: m.mountPath, readOnly: Boolean(m.readOnly),
    })),
  };
}

function containersOf(pod) {
  const statuses = (list) => new Map((list || []).map((s) => [s.name, s]));
  const initStatus = statuses(pod.status?.initContainerStatuses);
  const mainStatus = statuses(pod.status?.containerStatuses);
  // Sidecars (init containers that keep running) start in their place among the init
  // containers, so they stay in spec order, interleaved with them.
  const inits = (pod.spec?.initContainers || []).map((c, i) => containerView(
    c, c.restartPolicy === 'Always' ? 'sidecar' : 'init', initStatus.get(c.name), i + 1,
  ));
  const mains = (pod.spec?.containers || [])
    .map((c, i) => containerView(c, 'container', mainStatus.get(c.name), i + 1));
  return [...inits, ...mains];
}

function volumeSource(volume) {
  const [type, source] = Object.entries(volume).find(([k]) => k !== 'name') || ['unknown', {}];
  const detail = source?.claimName || source?.path || source?.name || source?.secretName
    || (source?.medium ? `medium ${source.medium}` : '');
  return { type, detail };
}

function volumesOf(pod, containers) {
  return (pod.spec?.volumes || []).map((volume) => ({
    name: volume.name,
    ...volumeSource(volume),
    mountedBy: containers.filter((c) => c.mounts.some((m) => m.volume === volume.name))
      .map((c) => c.name),
  }));
}

/** The namespaces the pod's containers share; with hostNetwork the kubelet gives the host's UTS too. */
function sharedNamespaces(spec) {
  return [
    spec.hostNetwork ? 'host network' : 'network',
    spec.hostIPC ? 'host IPC' : 'IPC',
    spec.hostNetwork ? 'host UTS' : 'UTS',
    ...(spec.hostPID ? ['host PID'] : spec.shareProcessNamespace ? ['PID'] : []),
  ];
}

/** The status word kubectl shows for a pod. */
function podStatus(pod, containers) {
  if (pod.metadata?.deletionTimestamp) return 'Terminating';
  const waiting = containers.find((c) => c.state === 'waiting' && c.stateDetail !== 'not started');
  if (waiting && pod.status?.phase !== 'Succeeded') return waiting.stateDetail;
  return pod.status?.reason || pod.status?.phase || 'Pending';
}

function podView(pod) {
  const spec = pod.spec || {};
  const containers = containersOf(pod);
  const ref = controllerOf(pod);
  return {
    key: keyOf('Pod', '', pod.metadata.name),
    name: pod.metadata.name,
    status: podStatus(pod, containers),
    phase: pod.status?.phase || 'Pending',
    ip: pod.status?.podIP || '',
    hostname: spec.hostname || pod.metadata.name,
    node: spec.nodeName || '',
    qos: pod.status?.qosClass || '',
    shared: sharedNamespaces(spec),
    owner: ref ? refKey(ref) : null,
    containers,
    volumes: volumesOf(pod, containers),
  };
}

function servicePorts(service) {
  return (service.spec?.ports || []).map((p) => `${p.port}→${p.targetPort ?? p.port}/${p.protocol || 'TCP'}`
    + (p.nodePort ? ` (node ${p.nodePort})` : ''));
}

function serviceNode(name, service) {
  return {
    key: keyOf('Service', '', name),
    name,
    type: service?.spec?.type || '',
    clusterIP: service?.spec?.clusterIP || '',
    ports: service ? servicePorts(service) : [],
    missing: !service,
  };
}

/**
 * Service → pod edges from the EndpointSlices' target references, one per pair (a dual-stack
 * Service's slices name each pod once per family); not ready only if no slice says it is ready.
 */
function endpointEdges(store) {
  const edges = new Map();
  for (const slice of store.endpointslices.values()) {
    const service = slice.metadata?.labels?.['kubernetes.io/service-name'];
    if (!service || !store.services.has(service)) continue;
    for (const endpoint of slice.endpoints || []) {
      const target = endpoint.targetRef;
      if (target?.kind !== 'Pod' || !store.pods.has(target.name)) continue;
      const from = keyOf('Service', '', service);
      const to = keyOf('Pod', '', target.name);
      const ready = endpoint.conditions?.ready !== false || edges.get(`${from} ${to}`)?.kind === 'endpoint';
      edges.set(`${from} ${to}`, { from, to, kind: ready ? 'endpoint' : 'endpoint not-ready' });
    }
  }
  return [...edges.values()];
}

function routesOf(ingress) {
  const name = ingress.metadata.name;
  const route = (place, host, path, backend) => ({
    key: `Route/${name}/${place}`,
    ingress: name,
    host,
    path,
    service: backend?.service?.name || '',
    port: backend?.service?.port?.number ?? backend?.service?.port?.name ?? '',
  });
  const routes = (ingress.spec?.rules || []).flatMap((rule, r) => (rule.http?.paths || [])
    .map((p, i) => route(`${r}/${i}`, rule.host || '*', p.path || '/', p.backend)));
  if (ingress.spec?.defaultBackend) routes.push(route('default', '*', ' (default)', ingress.spec.defaultBackend));
  return routes;
}

function byName(a, b) {
  return a.name.localeCompare(b.name);
}

/** The owner chain of a key, top first, as a sort key that keeps families together. */
function lineage(key, owners) {
  const chain = [];
  for (let at = key; at && chain.length < 5; at = owners.get(at)?.parent) chain.unshift(at);
  return chain.join(' ');
}

/** The whole picture: layers of view objects and the edges between their keys. */
export function buildGraph(store) {
  const owners = collectOwners(store);
  const pods = [...store.pods.values()].map(podView);
  const sortKey = (key, name) => `${lineage(key, owners)} ${name}`;
  pods.sort((a, b) => sortKey(a.owner, a.name).localeCompare(sortKey(b.owner, b.name)));
  const ownerList = [...owners.values()].sort((a, b) => lineage(a.key, owners).localeCompare(lineage(b.key, owners)));
  const routes = [...store.ingresses.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).flatMap(routesOf);
  const services = new Map([...store.services.values()].map((s) => [s.metadata.name, serviceNode(s.metadata.name, s)]));
  for (const route of routes) {
    if (route.service && !services.has(route.service)) services.set(route.service, serviceNode(route.service, null));
  }
  const edges = [
    ...routes.filter((r) => r.service).map((r) => ({ from: r.key, to: keyOf('Service', '', r.service), kind: 'route' })),
    ...endpointEdges(store),
    ...ownerList.filter((o) => o.parent).map((o) => ({ from: o.parent, to: o.key, kind: 'owns' })),
    ...pods.filter((p) => p.owner).map((p) => ({ from: p.owner, to: p.key, kind: 'owns' })),
  ];
  return {
    routes,
    services: [...services.values()].sort(byName),
    owners: ownerList.filter((o) => TOP_KINDS.has(o.kind) || !o.parent),
    controllers: ownerList.filter((o) => !TOP_KINDS.has(o.kind) && o.parent),
    pods,
    edges,
  };
}
