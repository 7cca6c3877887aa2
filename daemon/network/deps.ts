// What the network service needs from the rest of berthd, as narrow interfaces (daemon.ts wires them):
// the containers it gives namespaces and endpoints to, the settings of the default bridge, the events.
import type { Logger } from 'pino';
import type { Config } from '../config/config';
import type { DB } from '../state/db';
import type { ContainerService } from '../containers/service';
import type { EventSink } from '../containers/deps';

/** The container service as networks use it: lookups, whether one runs, its namespaces and files. */
export type NetworkContainers = Pick<ContainerService,
  'lookup' | 'all' | 'isRunningId' | 'holdNamespace' | 'containerDir' | 'saveHostConfig'>;

export interface NetworkDeps {
  /** The daemon's settings, whole: the network reads many of them (bridge, bip, pools, iptables, IPv6 …),
   *  and they are values, not another room's state. */
  readonly config: Readonly<Config>;
  /** The engine's stable identity (the engine-id file): per-engine defaults are derived from it. */
  readonly engineId: string;
  readonly db: DB;
  readonly log: Logger;
  readonly events: EventSink;
  readonly containers: NetworkContainers;
}
