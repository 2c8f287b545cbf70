#!/usr/bin/env bash
# Builds the local control plane binaries from the Go module proxy and caches them
# outside the repository, one folder per component and version:
#   $SICKBAY_CACHE_DIR/k8s-v1.36.3/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy}
#   $SICKBAY_CACHE_DIR/kubectl-v1.36.3/kubectl (for the test of `kubectl sickbay`)
#   $SICKBAY_CACHE_DIR/etcd-v3.6.16/etcd
#   $SICKBAY_CACHE_DIR/kwok-v0.8.0/kwok
#   $SICKBAY_CACHE_DIR/helm-v3.22.0/helm (for the chart's tests)
#   $SICKBAY_CACHE_DIR/versitygw-v1.8.0/versitygw (an S3-compatible server, for the scene archive's tests)
#   $SICKBAY_CACHE_DIR/containerd-v2.4.2/{containerd,containerd-shim-runc-v2,ctr} (the real node's runtime)
#   $SICKBAY_CACHE_DIR/criu-4.2.1/criu (checkpoints; built from Debian's source of it)
#   $SICKBAY_CACHE_DIR/crds-cert-manager-.../*.yaml (third-party CRDs for the chart's dry-run)
#   $SICKBAY_CACHE_DIR/cert-manager-<version>-<hash>/{cert-manager-local,crds/} (the fault suite's cert-manager)
# A component whose binaries are already there is not rebuilt. k8s.io/kubernetes cannot
# be `go install`ed (its go.mod replaces ~33 staging modules with local paths), so each
# component is built from a throwaway wrapper module; the replace list is generated from
# the chosen version's own go.mod, not typed.
set -euo pipefail

K8S_VERSION=${SICKBAY_K8S_VERSION:-v1.36.3}
ETCD_VERSION=${SICKBAY_ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${SICKBAY_KWOK_VERSION:-v0.8.0}
HELM_VERSION=${SICKBAY_HELM_VERSION:-v3.22.0}
VERSITYGW_VERSION=${SICKBAY_VERSITYGW_VERSION:-v1.8.0}
CONTAINERD_VERSION=${SICKBAY_CONTAINERD_VERSION:-v2.4.2}
CRIU_VERSION=${SICKBAY_CRIU_VERSION:-4.2.1}
CERT_MANAGER_VERSION=${SICKBAY_CERT_MANAGER_VERSION:-v1.21.2}
PROMETHEUS_OPERATOR_VERSION=${SICKBAY_PROMETHEUS_OPERATOR_VERSION:-v0.85.0}
CACHE=${SICKBAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sickbay}

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
PATH=$PATH:/usr/local/go/bin

say() { printf '[control-plane build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FAILED: $*"; say "To skip the build, point KUBEBUILDER_ASSETS at a folder holding kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok (or SICKBAY_BIN_DIR)."; exit 1; }

command -v go >/dev/null || die "no Go toolchain on PATH (need Go >= 1.26 for Kubernetes ${K8S_VERSION})"

# Builds go into a temp dir and renames into place so a half-built cache never looks complete.
publish() { # <tmpdir> <final dir>
  chmod 0755 "$1"; rm -rf "$2"; mkdir -p "$(dirname "$2")"; mv "$1" "$2"
}

# A binary its module builds with `go install`, into $CACHE/<name>-<version>/.
go_install() { # <name> <version> <package>
  local out="$CACHE/$1-$2"
  [[ -x $out/$1 ]] && { say "$1 $2 cached"; return; }
  say "building $1 $2 (go install)"
  local tmp; tmp=$(mktemp -d "$CACHE/.$1.XXXX")
  GOBIN=$tmp go install "$3@$2" || die "go install $3@$2"
  publish "$tmp" "$out"
  say "$1 done"
}

build_kwok() { go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok; }

# The Versity S3 Gateway: an S3-compatible server over a plain folder, for the tests of
# the scene archive (a real S3 API, signatures, multipart uploads; no mock).
build_versitygw() { go_install versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw; }

# containerd 2.x for the real node: Debian bookworm's 1.6 answers CRI CheckpointContainer
# with "not implemented". Pure Go (CGO off), with Debian's runc.
build_containerd() {
  local out="$CACHE/containerd-$CONTAINERD_VERSION"
  [[ -x $out/containerd && -x $out/containerd-shim-runc-v2 && -x $out/ctr ]] && { say "containerd $CONTAINERD_VERSION cached"; return; }
  say "building containerd $CONTAINERD_VERSION, its runc shim and ctr (go install, about 2 min)"
  local tmp; tmp=$(mktemp -d "$CACHE/.containerd.XXXX") m=github.com/containerd/containerd/v2/cmd
  GOBIN=$tmp go install -trimpath -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
    "$m/containerd@$CONTAINERD_VERSION" "$m/containerd-shim-runc-v2@$CONTAINERD_VERSION" "$m/ctr@$CONTAINERD_VERSION" || die "go install containerd@$CONTAINERD_VERSION"
  publish "$tmp" "$out"
  say "containerd done"
}

# CRIU for checkpoints: bookworm's 3.17 fails at start on kernels >= 6.13 (the new
# [vvar_vclock] mapping, CRIU issue 2532) and sid's binary needs a newer libc, so it is
# built from Debian's own source of $CRIU_VERSION (sid's source list in a private apt
# configuration: the machine's apt setup is untouched), checked against the .dsc's
# SHA-256, with hack/criu/*.patch applied.
build_criu() {
  local out="$CACHE/criu-$CRIU_VERSION"
  # Our patches (hack/criu/*.patch, each says why) are part of the cached build's identity.
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  local patches; patches=$(cat "$here"/criu/*.patch | sha256sum | cut -c1-16)
  [[ -x $out/criu && $(cat "$out/patches" 2>/dev/null) == "$patches" ]] && { say "criu $CRIU_VERSION cached"; return; }
  local pcs=(libprotobuf-c libnl-3.0 libcap libbsd gnutls libnftables uuid)
  pkg-config --exists "${pcs[@]}" 2>/dev/null && [[ -f /usr/include/libnet.h ]] && command -v protoc-c >/dev/null && command -v protoc >/dev/null && command -v gcc >/dev/null \
    || die "criu's build dependencies are missing: apt-get install gcc make pkgconf libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler libnl-3-dev libnet1-dev libcap-dev libbsd-dev libgnutls28-dev libnftables-dev uuid-dev"
  say "building criu $CRIU_VERSION from Debian's source (about 1 min)"
  local w="$CACHE/build/criu-$CRIU_VERSION"; rm -rf "$w"; mkdir -p "$w/apt/lists/partial" "$w/apt/cache/archives/partial" "$w/src"
  echo "deb-src http://deb.debian.org/debian sid main" >"$w/apt/sources.list"
  cat >"$w/apt/apt.conf" <<APT
Dir::Etc::SourceList "$w/apt/sources.list";
Dir::Etc::SourceParts "$w/apt/none";
Dir::State::Lists "$w/apt/lists";
Dir::Cache "$w/apt/cache";
APT
  APT_CONFIG=$w/apt/apt.conf apt-get update -q >&2 || die "apt-get update of sid's source list"
  # Debian's patch tarball may be missing from the mirror; the upstream tarball is what builds.
  (cd "$w/src" && APT_CONFIG=$w/apt/apt.conf apt-get source --download-only "criu=$CRIU_VERSION-1" >&2) || true
  local tarball="$w/src/criu_$CRIU_VERSION.orig.tar.xz" dsc="$w/src/criu_$CRIU_VERSION-1.dsc"
  [[ -f $tarball && -f $dsc ]] || die "apt-get source criu=$CRIU_VERSION-1 fetched no .orig tarball and .dsc"
  local want; want=$(awk '/^Checksums-Sha256:/{f=1;next} f&&/orig.tar/{print $1;exit}' "$dsc")
  [[ -n $want && $(sha256sum "$tarball" | cut -d' ' -f1) == "$want" ]] || die "criu_$CRIU_VERSION.orig.tar.xz does not match its .dsc's SHA-256"
  tar -C "$w/src" -xf "$tarball" || die "unpack criu"
  for p in "$here"/criu/*.patch; do
    patch -d "$w/src/criu-$CRIU_VERSION" -p1 --quiet <"$p" || die "patch $(basename "$p") does not apply to criu $CRIU_VERSION"
  done
  make -C "$w/src/criu-$CRIU_VERSION" -j"$(nproc)" criu >"$w/make.log" 2>&1 || { tail -20 "$w/make.log" >&2; die "make criu (log: $w/make.log)"; }
  local tmp; tmp=$(mktemp -d "$CACHE/.criu.XXXX")
  cp "$w/src/criu-$CRIU_VERSION/criu/criu" "$tmp/criu"
  echo "$patches" >"$tmp/patches"
  "$tmp/criu" --version >&2 || die "the built criu does not run"
  publish "$tmp" "$out"
  rm -rf "$w"
  say "criu done"
}

# helm, for the chart's tests (lint, template, install into the local control plane).
build_helm() {
  local out="$CACHE/helm-$HELM_VERSION"
  [[ -x $out/helm ]] && { say "helm $HELM_VERSION cached"; return; }
  say "building helm $HELM_VERSION (go install)"
  local tmp; tmp=$(mktemp -d "$CACHE/.helm.XXXX")
  # As helm's Makefile does: the Kubernetes version it assumes without a cluster (for
  # `helm template` and lint) is the one of its k8s.io modules, read from its go.mod.
  local gomod minor
  gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p') || die "go mod download helm"
  minor=$(sed -n 's/^\s*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)
  [[ -n $minor ]] || die "cannot read the k8s.io/client-go version from helm's go.mod"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"; done
  GOBIN=$tmp go install -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" || die "go install helm@$HELM_VERSION"
  publish "$tmp" "$out"
  say "helm done"
}

# The CRDs the chart's optional objects need (cert-manager's Issuer and Certificate,
# prometheus-operator's ServiceMonitor, PodMonitor and PrometheusRule), from those projects' Go
# modules, so the chart's server-side dry-run runs against their real schemas.
fetch_crds() {
  local out="$CACHE/crds-cert-manager-$CERT_MANAGER_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  [[ -f $out/monitoring.coreos.com_podmonitors.yaml ]] && { say "third-party CRDs cached"; return; }
  say "fetching cert-manager $CERT_MANAGER_VERSION and prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs (go mod download)"
  local tmp; tmp=$(mktemp -d "$CACHE/.crds.XXXX")
  local cm po
  cm=$(go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || die "go mod download cert-manager"
  po=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || die "go mod download prometheus-operator"
  cp "$cm/deploy/crds/cert-manager.io_issuers.yaml" "$cm/deploy/crds/cert-manager.io_certificates.yaml" "$tmp/" || die "cert-manager CRDs not in the module"
  cp "$po/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$po/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" "$po/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$tmp/" || die "prometheus-operator CRDs not in the module"
  chmod 0644 "$tmp"/*.yaml
  publish "$tmp" "$out"
  say "third-party CRDs done"
}

# cert-manager's controller and cainjector for the fault suite's certificate renewal
# (tests/chaos). Its own commands are Go modules the proxy does not serve, so
# hack/cert-manager/main.go starts the same controllers from the library module; the
# cache folder is keyed by the wrapper's content, and holds all of cert-manager's CRDs.
build_cert_manager() {
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  local key; key=$(cat "$here/cert-manager/main.go" "$here/cert-manager/go.mod" "$here/cert-manager/go.sum" | sha256sum | cut -c1-12)
  local out="$CACHE/cert-manager-$CERT_MANAGER_VERSION-$key"
  [[ -x $out/cert-manager-local ]] && { say "cert-manager $CERT_MANAGER_VERSION cached"; return; }
  say "building cert-manager $CERT_MANAGER_VERSION controller and cainjector (hack/cert-manager, about 3-5 min on 2 cores)"
  grep -q "github.com/cert-manager/cert-manager $CERT_MANAGER_VERSION" "$here/cert-manager/go.mod" || die "hack/cert-manager/go.mod does not require cert-manager $CERT_MANAGER_VERSION"
  local tmp; tmp=$(mktemp -d "$CACHE/.cert-manager.XXXX")
  (cd "$here/cert-manager" && go build -trimpath -ldflags "-s -w" -o "$tmp/cert-manager-local" .) || die "go build cert-manager-local"
  local cm
  cm=$(go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || die "go mod download cert-manager"
  mkdir -p "$tmp/crds" && cp "$cm"/deploy/crds/*.yaml "$tmp/crds/" && chmod 0644 "$tmp"/crds/*.yaml || die "cert-manager CRDs not in the module"
  publish "$tmp" "$out"
  say "cert-manager done"
}

build_etcd() {
  local out="$CACHE/etcd-$ETCD_VERSION"
  [[ -x $out/etcd ]] && { say "etcd $ETCD_VERSION cached"; return; }
  say "building etcd $ETCD_VERSION (wrapper module)"
  local w="$CACHE/build/etcd-$ETCD_VERSION"; mkdir -p "$w"
  cat >"$w/go.mod" <<GOMOD
module sickbay.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat >"$w/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$w" && go mod tidy) || die "go mod tidy for etcd $ETCD_VERSION"
  local tmp; tmp=$(mktemp -d "$CACHE/.etcd.XXXX")
  (cd "$w" && go build -trimpath -o "$tmp/etcd" go.etcd.io/etcd/server/v3) || die "go build etcd"
  publish "$tmp" "$out"
  say "etcd done"
}

# A module that requires k8s.io/kubernetes at $K8S_VERSION (its staging modules pinned to
# the matching v0 tags) and imports the given commands, tidied: <dir> <package>...
k8s_wrapper_module() {
  local w=$1; shift
  local modjson gomod staging_v
  modjson=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION") || die "go mod download k8s.io/kubernetes@$K8S_VERSION"
  gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$modjson")
  [[ -f $gomod ]] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION"
  staging_v="v0.${K8S_VERSION#v1.}"
  mkdir -p "$w"
  {
    echo "module sickbay.local/k8sbuild"; echo
    grep -E '^go [0-9]' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo; echo "require k8s.io/kubernetes $K8S_VERSION"; echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging_v"'#p' "$gomod"
    echo ")"
  } >"$w/go.mod"
  say "wrapper go.mod has $(grep -c ' => ' "$w/go.mod") staging replaces"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
    printf ')\n'
  } >"$w/tools.go"
  (cd "$w" && go mod tidy) || die "go mod tidy for kubernetes $K8S_VERSION"
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
}

build_k8s() {
  local out="$CACHE/k8s-$K8S_VERSION"
  if [[ -x $out/kube-apiserver && -x $out/kube-controller-manager && -x $out/kube-scheduler && -x $out/kubelet && -x $out/kube-proxy ]]; then
    say "kubernetes $K8S_VERSION cached"; return
  fi
  say "building kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy $K8S_VERSION (the long one: 15-30 min on 2 cores)"
  local w="$CACHE/build/k8s-$K8S_VERSION"
  local cmds=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  k8s_wrapper_module "$w" "${cmds[@]}"
  local tmp; tmp=$(mktemp -d "$CACHE/.k8s.XXXX")
  say "compiling (go build -v prints packages as they finish)"
  (cd "$w" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$tmp/" -v "${cmds[@]}" 2>&1 \
    | awk '{n++} n%200==0 {printf "[control-plane build] %d packages compiled\n", n > "/dev/stderr"}') || die "go build kubernetes"
  [[ -x $tmp/kube-apiserver ]] || die "go build produced no kube-apiserver"

  publish "$tmp" "$out"
  say "kubernetes done"
}

# kubectl, for the CLI's test of `kubectl sickbay` (kubectl's plugin lookup). Its own
# folder, so an existing cache of the others is not rebuilt.
build_kubectl() {
  local out="$CACHE/kubectl-$K8S_VERSION"
  [[ -x $out/kubectl ]] && { say "kubectl $K8S_VERSION cached"; return; }
  say "building kubectl $K8S_VERSION (a few minutes; shares the Go build cache with the others)"
  local w="$CACHE/build/kubectl-$K8S_VERSION"
  k8s_wrapper_module "$w" k8s.io/kubernetes/cmd/kubectl
  local tmp; tmp=$(mktemp -d "$CACHE/.kubectl.XXXX")
  (cd "$w" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$tmp/" k8s.io/kubernetes/cmd/kubectl) || die "go build kubectl"
  [[ -x $tmp/kubectl ]] || die "go build produced no kubectl"
  publish "$tmp" "$out"
  say "kubectl done"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9 || die "cannot lock $CACHE/.build.lock"
case "${1:-all}" in
  all) build_kwok; build_etcd; build_k8s; build_kubectl; build_helm; build_versitygw; fetch_crds; build_cert_manager; build_containerd; build_criu ;;
  node) build_containerd; build_criu ;; containerd) build_containerd ;; criu) build_criu ;;
  kwok) build_kwok ;; versitygw) build_versitygw ;; etcd) build_etcd ;; k8s) build_k8s ;; kubectl) build_kubectl ;; helm) build_helm ;; crds) fetch_crds ;; cert-manager) build_cert_manager ;;
  *) die "usage: $0 [all|node|kwok|etcd|k8s|kubectl|helm|versitygw|crds|cert-manager|containerd|criu]" ;;
esac
say "binaries in $CACHE"
