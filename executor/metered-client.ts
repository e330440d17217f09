// A ContainerClient that measures the one it wraps: the latency of each Docker
// API call and the calls that fail, by operation. A decorator, so the
// lifecycle code never knows it is measured. Calls whose duration is the job's
// own (wait, the streams of attach and getArchive) count errors only: their
// latency would only repeat the job duration histogram.
import type { EngineMetrics } from "../core/metrics.ts";
import type { ContainerClient } from "./docker.ts";

export function meterClient(inner: ContainerClient, metrics: EngineMetrics): ContainerClient {
  const call = async <T>(operation: string, timed: boolean, work: () => Promise<T>) => {
    const end = timed ? metrics.dockerLatency.startTimer({ operation }) : undefined;
    try {
      return await work();
    } catch (err) {
      metrics.dockerErrors.inc({ operation });
      throw err;
    } finally {
      end?.();
    }
  };
  return {
    ping: () => call("ping", true, () => inner.ping()),
    imagePresent: (tag) => call("image_inspect", true, () => inner.imagePresent(tag)),
    create: (spec) => call("create", true, () => inner.create(spec)),
    putArchive: (id, path, tar) => call("put_archive", true, () => inner.putArchive(id, path, tar)),
    attach: (id) => call("attach", false, () => inner.attach(id)),
    start: (id) => call("start", true, () => inner.start(id)),
    update: (id, settings) => call("update", true, () => inner.update(id, settings)),
    wait: (id) => call("wait", false, () => inner.wait(id)),
    inspectExit: (id) => call("inspect", true, () => inner.inspectExit(id)),
    usage: (id) => call("stats", true, () => inner.usage(id)),
    kill: (id) => call("kill", true, () => inner.kill(id)),
    getArchive: (id, path) => call("get_archive", false, () => inner.getArchive(id, path)),
    remove: (id) => call("remove", true, () => inner.remove(id)),
    createVolume: (name, labels) =>
      call("volume_create", true, () => inner.createVolume(name, labels)),
    volumeLabels: (name) => call("volume_inspect", true, () => inner.volumeLabels(name)),
    removeVolume: (name) => call("volume_remove", true, () => inner.removeVolume(name)),
    statPath: (id, path) => call("stat_path", true, () => inner.statPath(id, path)),
    listContainers: (label) => call("list_containers", true, () => inner.listContainers(label)),
    listVolumes: (label) => call("list_volumes", true, () => inner.listVolumes(label)),
  };
}
