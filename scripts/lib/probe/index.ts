// Host probes: what each inventory host is doing (reachable, load, memory, disk, GPUs, tmux
// sessions), asked in one remote command per host over the pooled connections; on a timer for a
// live view; remote files read over SFTP on the same connections.
export { parseNvidiaSmi, parseProbe, type GpuHealth, type GpuReading, type ProbeReading } from './parse-probe.js';
export { hostIdentity, probeHost, probeHosts, type HostHealth, type HostIdentity } from './probe-hosts.js';
export { HostWatch, meanUtil, type HostPoint, type HostView, type HostWatchOptions } from './host-watch.js';
export { readFileOnHost, readRemoteFile, WHOLE_FILE_LIMIT } from './remote-file.js';
export { closeSharedPool as closeProbeConnections } from '../remote/open-host.js';
