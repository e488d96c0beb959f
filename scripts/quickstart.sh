#!/bin/bash
# Quick start on a fresh Debian 12 machine, as root: install, build, then run the S1 seed pod
# (a backend writing the time into a shared volume, a frontend serving it) and show it working:
# the page fetched from the host at the pod's IP, and from inside the pod over localhost; then
# the same pod through the real kubectl, with the kubeconfig the agent wrote; then a ConfigMap
# handed to a pod as an environment variable and a mounted file; then a Deployment rolled out
# and back, with a disruption budget and an autoscaler; then a Service spreading requests over
# two pods, reached by its DNS name from a pod and through a NodePort from the host; last, a
# one-time login link to the topology page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "==> building peapod (release)"
cargo build --release -q -p peapod
install -m 0755 target/release/peapod /usr/local/bin/peapod
echo "==> building the busybox test image"
tests/images/build.sh target/test-images >/dev/null

export PEAPOD_ROOT="${PEAPOD_ROOT:-/var/tmp/peapod-quickstart}"
mkdir -p "$PEAPOD_ROOT"
peapod serve >"$PEAPOD_ROOT/agent.log" 2>&1 &
agent=$!
trap 'peapod delete pods --all --grace-period 1 >/dev/null 2>&1 || true; kill $agent 2>/dev/null; wait $agent 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$PEAPOD_ROOT/run/peapod/peapod.sock" ] && break; sleep 0.05; done

set -x
peapod load -i target/test-images/busybox-oci.tar
peapod apply -f examples/s1-web-content-sidecar.yaml
{ set +x; } 2>/dev/null
for _ in $(seq 100); do peapod get pod example-pod 2>/dev/null | grep -q '2/2 *Running' && break; sleep 0.1; done
if ! peapod get pod example-pod 2>/dev/null | grep -q '2/2 *Running'; then
  echo "the S1 pod did not start within 10 s; what the node and the pod say:" >&2
  peapod describe node | sed -n '/^Conditions:/,/^Addresses:/p' >&2 || true
  peapod describe pod example-pod | sed -n '/^Events:/,$p' >&2 || true
  exit 1
fi
set -x
peapod get pods -o wide
{ set +x; } 2>/dev/null
pod_ip=$(peapod get pod example-pod -o json | jq -r .status.podIP)
set -x
curl -s "http://$pod_ip:8080/index.html"
sleep 1
curl -s "http://$pod_ip:8080/index.html"
peapod exec example-pod -c frontend -- wget -qO- http://localhost:8080/index.html
peapod describe pod example-pod
export KUBECONFIG="$PEAPOD_ROOT/var/lib/peapod/kubeconfig.yaml"
kubectl get namespaces
kubectl get pods -o wide
kubectl label pod example-pod tier=web
kubectl get pods -l tier=web -L tier
kubectl exec example-pod -c frontend -- wget -qO- http://localhost:8080/index.html
kubectl delete pod example-pod --grace-period 1
# A ConfigMap handed to a pod as an environment variable and as a file.
kubectl create configmap greeting --from-literal=message='hello from a ConfigMap'
kubectl apply -f - <<'POD'
apiVersion: v1
kind: Pod
metadata: {name: greeter}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: [sh, -c, 'echo "env: $MESSAGE"; echo "file: $(cat /config/message)"']
    env: [{name: MESSAGE, valueFrom: {configMapKeyRef: {name: greeting, key: message}}}]
    volumeMounts: [{name: config, mountPath: /config}]
  volumes: [{name: config, configMap: {name: greeting}}]
POD
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/greeter --timeout=30s
kubectl logs greeter
kubectl delete pod greeter --grace-period 1
kubectl delete configmap greeting
# A Deployment of two pods, rolled out to a new template, rolled back, scaled, deleted.
kubectl apply -f - <<'DEPLOYMENT'
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleepers, labels: {app: sleepers}}
spec:
  replicas: 2
  selector: {matchLabels: {app: sleepers}}
  template:
    metadata: {labels: {app: sleepers}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: main, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}]
DEPLOYMENT
kubectl rollout status deployment/sleepers --timeout=60s
kubectl set env deployment/sleepers COLOUR=blue
kubectl rollout status deployment/sleepers --timeout=60s
kubectl rollout history deployment/sleepers
kubectl rollout undo deployment/sleepers
kubectl rollout status deployment/sleepers --timeout=60s
kubectl get deployments,replicasets,pods -l app=sleepers
kubectl scale deployment sleepers --replicas=1
# A disruption budget and an autoscaler for it, as kubectl creates them.
kubectl create poddisruptionbudget sleepers --selector=app=sleepers --min-available=1
kubectl autoscale deployment sleepers --min=1 --max=3 --cpu-percent=80
kubectl get hpa,pdb
kubectl delete hpa,pdb sleepers
kubectl delete deployment sleepers
# A Service: two web pods behind one cluster IP and DNS name, and a NodePort on the host.
kubectl apply -f - <<'DEPLOYMENT'
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, labels: {app: hello}}
spec:
  replicas: 2
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: Never
        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
DEPLOYMENT
kubectl rollout status deployment/hello --timeout=60s
kubectl expose deployment hello --type=NodePort --port=80 --target-port=8080
kubectl get service,endpointslices -l app=hello -o wide
kubectl run client --image=busybox --image-pull-policy=Never --restart=Never -- sleep 3600
kubectl wait --for=condition=Ready pod/client --timeout=30s
kubectl exec client -- sh -c 'for i in 1 2 3 4; do printf "GET / HTTP/1.0\r\n\r\n" | nc hello 80 | tail -n 1; done'
kubectl exec client -- nslookup hello.default.svc.cluster.local
node_port=$(kubectl get service hello -o jsonpath='{.spec.ports[0].nodePort}')
curl -s "http://127.0.0.1:$node_port/"
kubectl delete pod client --grace-period 1
kubectl delete service,deployment hello
# The topology page: a one-time login link to open in a browser that reaches this host.
peapod ui
{ set +x; } 2>/dev/null
