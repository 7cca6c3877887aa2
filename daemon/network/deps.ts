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
  readonly config: Pick<Config, 'execRoot' | 'bridge' | 'bip' | 'icc' | 'iptables' | 'defaultAddressPools'>;
  readonly db: DB;
  readonly log: Logger;
  readonly events: EventSink;
  readonly containers: NetworkContainers;
}
