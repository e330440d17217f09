// One operation at a time per workspace, in arrival order; different workspaces
// in parallel. A chain of promises per id, dropped when it drains, so the map
// only holds workspaces with work in flight.
export class WorkspaceLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every earlier task on `id` has settled. */
  run<T>(id: string, task: () => Promise<T>): Promise<T> {
    const prior = this.tails.get(id) ?? Promise.resolve();
    const result = prior.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(id, tail);
    void tail.then(() => {
      if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    return result;
  }

  busy(id: string): boolean {
    return this.tails.has(id);
  }
}
