// A counter of changes to berthd's state, for answers kept between requests (the container list and
// inspect bodies, containers/views.ts): a kept answer made at one value of the counter is stale once the
// counter has moved. It moves on every write to the state database through the daemon's connection
// (db.ts wraps each statement that writes, so no write path can be missed by forgetting a call) and on
// every event (events/bus.ts: every change a client can see is published, also those of services that
// write through connections of their own, such as exec and health).

let epoch = 0;

/** The current value: equal values mean no write and no event happened in between. */
export function stateEpoch(): number {
  return epoch;
}

/** Something changed (called after the change). */
export function stateChanged(): void {
  epoch++;
}
