// Which processes a node must run, read off the node itself: its container runtime
// (status.nodeInfo.containerRuntimeVersion, "containerd://1.7.2", "cri-o://1.29.1",
// "docker://24.0.7") and its kubelet (kubeletVersion "v1.29.3+k3s1": the kubelet runs
// inside k3s). A default install then judges containerd, CRI-O, Docker and k3s nodes by
// what they really run; a runtime it does not know is reported, and its processes are
// not checked, so such a node is never isolated for them.
import type { V1NodeSystemInfo } from '@kubernetes/client-node';
import { parseProcessSpecs, type ProcessSpec } from '../core/agent-settings.js';

/** Calico's processes, checked once seen (they run in the calico-node pod). */
const CNI = 'felix@pod?,bird@pod?,confd@pod?';

const RUNTIMES: Record<string, { label: string; processes: string }> = {
  containerd: { label: 'containerd', processes: 'containerd|docker-containerd' },
  'cri-o': { label: 'CRI-O', processes: 'crio' },
  // Docker Engine runs its own containerd; cri-dockerd is the kubelet's shim to it.
  docker: { label: 'Docker', processes: 'dockerd,containerd|docker-containerd,cri-dockerd?' },
};

export type RuntimeLayout = { known: true; key: string; description: string; specs: ProcessSpec[] } | { known: false; key: string; description: string };

export function runtimeLayout(info: Pick<V1NodeSystemInfo, 'containerRuntimeVersion' | 'kubeletVersion'> | undefined): RuntimeLayout {
  const runtimeVersion = info?.containerRuntimeVersion ?? '';
  const scheme = /^([a-z0-9.-]+):\/\//.exec(runtimeVersion)?.[1] ?? '';
  const runtime = RUNTIMES[scheme];
  if (!runtime) {
    const what = runtimeVersion ? JSON.stringify(runtimeVersion) : 'none';
    return {
      known: false,
      key: `unknown:${runtimeVersion}`,
      description: `container runtime ${what} (status.nodeInfo.containerRuntimeVersion) is not one sickbay knows; its processes are not checked (set SICKBAY_AGENT_PROCESSES to check them)`,
    };
  }
  // k3s runs the kubelet in its own process; MicroK8s in kubelite.
  const k3s = /\+k3s/.test(info?.kubeletVersion ?? '');
  const kubelet = k3s ? 'k3s-server|k3s-agent|k3s' : 'kubelet|kubelite';
  const processes = `${runtime.processes},${kubelet},${CNI}`;
  return {
    known: true,
    key: processes,
    description: `${runtime.label}${k3s ? ' (k3s)' : ''} node`,
    specs: parseProcessSpecs(processes),
  };
}
