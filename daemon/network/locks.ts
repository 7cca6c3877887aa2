// Locks by name for the network service, shared (readers) or exclusive (a writer), in place of one lock for
// everything: container starts on one network run side by side, and only what really conflicts waits.
// What the keys mean is the service's business (`ctr:<id>` exclusive for a container's own namespace and
// endpoints; `net:<id>` shared while a container attaches to or detaches from a network, exclusive while
// the network is removed). IP addresses need no lock: allocate-and-record is synchronous.

type Waiter = { exclusive: boolean; wake: () => void };

class RwLock {
  readers = 0;
  writer = false;
  queue: Waiter[] = [];

  acquire(exclusive: boolean): Promise<void> {
    if (this.queue.length === 0 && (exclusive ? !this.writer && this.readers === 0 : !this.writer)) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ exclusive, wake: resolve }));
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.writer = true;
    else this.readers++;
  }

  release(exclusive: boolean): void {
    if (exclusive) this.writer = false;
    else this.readers--;
    // First come, first served: a waiting writer holds back the readers behind it.
    while (this.queue.length) {
      const w = this.queue[0];
      if (w.exclusive ? this.writer || this.readers > 0 : this.writer) break;
      this.queue.shift();
      this.take(w.exclusive);
      w.wake();
      if (w.exclusive) break;
    }
  }

  idle(): boolean {
    return !this.writer && this.readers === 0 && this.queue.length === 0;
  }
}

export interface LockRequest {
  key: string;
  exclusive: boolean;
}

export class Locks {
  private readonly locks = new Map<string, RwLock>();

  /** Runs fn holding every lock asked for; they are taken in key order, so two callers never deadlock. */
  async with<T>(wanted: LockRequest[], fn: () => Promise<T>): Promise<T> {
    const byKey = new Map<string, boolean>();
    for (const w of wanted) byKey.set(w.key, (byKey.get(w.key) ?? false) || w.exclusive);
    const order = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const held: Array<[string, boolean]> = [];
    try {
      for (const [key, exclusive] of order) {
        let l = this.locks.get(key);
        if (!l) this.locks.set(key, (l = new RwLock()));
        await l.acquire(exclusive);
        held.push([key, exclusive]);
      }
      return await fn();
    } finally {
      for (const [key, exclusive] of held.reverse()) {
        const l = this.locks.get(key)!;
        l.release(exclusive);
        if (l.idle()) this.locks.delete(key);
      }
    }
  }
}
