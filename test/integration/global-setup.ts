// Before any integration test: the engine must answer and every built-in
// profile's image must exist (built here when missing, with progress). After
// all of them: no container or volume labelled airlock (nor a workspace's) may be left.
import Dockerode from "dockerode";
import { ensureImages } from "../../images/build.ts";
import { loadProfiles } from "../../policies/load.ts";

export async function setup(): Promise<void> {
  const docker = new Dockerode();
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(
      `integration tests need a Docker engine (${(err as Error).message}); run .ci/run or start dockerd`,
    );
  }
  const images = [...new Set([...loadProfiles().values()].map((p) => p.image))];
  await ensureImages(docker, images, { log: (line) => process.stderr.write(`[images] ${line}\n`) });
}

export async function teardown(): Promise<void> {
  const docker = new Dockerode();
  const containers = await docker.listContainers({ all: true, filters: { label: ["airlock"] } });
  const volumes: { Name: string }[] = [];
  for (const label of ["airlock", "airlock.workspace", "airlock.workspace.touch"]) {
    volumes.push(...((await docker.listVolumes({ filters: { label: [label] } })).Volumes ?? []));
  }
  if (containers.length + volumes.length > 0) {
    throw new Error(
      `the suite left ${containers.length} container(s) and ${volumes.length} volume(s) labelled airlock: ` +
        [...containers.map((c) => c.Names.join(",")), ...volumes.map((v) => v.Name)].join(" "),
    );
  }
}
