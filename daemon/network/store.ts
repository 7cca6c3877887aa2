// SQLite rows of networks and endpoints.
import type { DB } from '../state/db';

export interface NetworkRow {
  id: string;
  name: string;
  driver: string;        // bridge | host | null
  created: string;
  bridge: string;        // the host bridge device
  subnet: string;        // CIDR
  ipRange: string;
  gateway: string;
  aux: Record<string, string>;
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  ipamUser: boolean;     // subnet given by the user (shown in IPAM.Config as given)
  /** EnableIPv6, and then the IPv6 subnet (given or a ULA /64), range and gateway ('' otherwise). */
  ipv6: boolean;
  subnet6: string;
  ipRange6: string;
  gateway6: string;
  ipamUser6: boolean;
  /** A subnet was given without a gateway (IPv4, IPv6): inspect shows no Gateway, as Docker shows the
   *  IPAM config as given. Absent: false. */
  gatewayImplied?: boolean;
  gateway6Implied?: boolean;
  /** IPAM.Options as given at create (null: none given). */
  ipamOptions?: Record<string, string> | null;
}

export interface EndpointRow {
  networkId: string;
  containerId: string;
  endpointId: string;
  ip: string;
  mac: string;
  staticIp: string;
  staticMac: string;
  aliases: string[];
  ifname: string;
  hostIf: string;
  /** EndpointSettings.GwPriority (0 when not given). */
  gwPriority: number;
  /** EndpointSettings.DriverOpts and Links ("target:alias", user networks), as given. */
  driverOpts?: Record<string, string>;
  links?: string[];
  /** The IPv6 address while attached ('' otherwise), the one asked for with --ip6, and
   *  IPAMConfig.LinkLocalIPs as given. */
  ip6?: string;
  staticIp6?: string;
  linkLocalIps?: string[];
}

type Raw = Record<string, string | number>;

const toNet = (r: Raw): NetworkRow => ({
  id: r.id as string, name: r.name as string, driver: r.driver as string, created: r.created as string,
  bridge: r.bridge as string, subnet: r.subnet as string, ipRange: r.ip_range as string, gateway: r.gateway as string,
  aux: JSON.parse(r.aux as string), internal: !!r.internal, attachable: !!r.attachable, labels: JSON.parse(r.labels as string),
  options: JSON.parse(r.options as string), ipamUser: !!r.ipam_user,
  ipv6: !!r.enable_ipv6, subnet6: (r.subnet6 as string) ?? '', ipRange6: (r.ip_range6 as string) ?? '', gateway6: (r.gateway6 as string) ?? '',
  ipamUser6: !!r.ipam_user6, gatewayImplied: !!r.gateway_implied, gateway6Implied: !!r.gateway6_implied,
  ipamOptions: r.ipam_options == null ? null : JSON.parse(r.ipam_options as string),
});
const toEp = (r: Raw): EndpointRow => ({
  networkId: r.network_id as string, containerId: r.container_id as string, endpointId: r.endpoint_id as string,
  ip: r.ip as string, mac: r.mac as string, staticIp: r.static_ip as string, staticMac: r.static_mac as string, aliases: JSON.parse(r.aliases as string),
  ifname: r.ifname as string, hostIf: r.host_if as string, gwPriority: Number(r.gw_priority ?? 0),
  driverOpts: JSON.parse((r.driver_opts as string) ?? '{}'), links: JSON.parse((r.links as string) ?? '[]'),
  ip6: (r.ip6 as string) ?? '', staticIp6: (r.static_ip6 as string) ?? '', linkLocalIps: JSON.parse((r.link_local_ips as string) ?? '[]'),
});

export class NetworkStore {
  constructor(private readonly db: DB) {}

  networks(): NetworkRow[] {
    return (this.db.prepare('SELECT * FROM networks ORDER BY created').all() as Raw[]).map(toNet);
  }
  insertNetwork(n: NetworkRow): void {
    this.db.prepare(`INSERT INTO networks (id, name, driver, created, bridge, subnet, ip_range, gateway, aux, internal, attachable, labels, options, ipam_user,
      enable_ipv6, subnet6, ip_range6, gateway6, ipam_user6, ipam_options, gateway_implied, gateway6_implied)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(n.id, n.name, n.driver, n.created, n.bridge, n.subnet, n.ipRange, n.gateway,
      JSON.stringify(n.aux), n.internal ? 1 : 0, n.attachable ? 1 : 0, JSON.stringify(n.labels), JSON.stringify(n.options), n.ipamUser ? 1 : 0,
      n.ipv6 ? 1 : 0, n.subnet6 ?? '', n.ipRange6 ?? '', n.gateway6 ?? '', n.ipamUser6 ? 1 : 0,
      n.ipamOptions == null ? null : JSON.stringify(n.ipamOptions), n.gatewayImplied ? 1 : 0, n.gateway6Implied ? 1 : 0);
  }
  deleteNetwork(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM endpoints WHERE network_id = ?').run(id);
      this.db.prepare('DELETE FROM networks WHERE id = ?').run(id);
    })();
  }
  endpoints(): EndpointRow[] {
    return (this.db.prepare('SELECT * FROM endpoints ORDER BY rowid').all() as Raw[]).map(toEp);
  }
  saveEndpoint(e: EndpointRow): void {
    this.db.prepare(`INSERT OR REPLACE INTO endpoints (network_id, container_id, endpoint_id, ip, mac, static_ip, static_mac, aliases, ifname, host_if, gw_priority, driver_opts, links,
      ip6, static_ip6, link_local_ips)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(e.networkId, e.containerId, e.endpointId, e.ip, e.mac, e.staticIp, e.staticMac, JSON.stringify(e.aliases), e.ifname, e.hostIf,
      e.gwPriority ?? 0, JSON.stringify(e.driverOpts ?? {}), JSON.stringify(e.links ?? []), e.ip6 ?? '', e.staticIp6 ?? '', JSON.stringify(e.linkLocalIps ?? []));
  }
  deleteEndpoint(networkId: string, containerId: string): void {
    this.db.prepare('DELETE FROM endpoints WHERE network_id = ? AND container_id = ?').run(networkId, containerId);
  }
  deleteContainer(containerId: string): void {
    this.db.prepare('DELETE FROM endpoints WHERE container_id = ?').run(containerId);
  }
}

/** The endpoint rows held in memory, in the table's order (rowid: `INSERT OR REPLACE` gives a saved row a
 *  new one, so a saved row moves to the end, as it does here), by network and by container. Changed with
 *  each write instead of re-reading every row after it: a start, stop or connect re-read and parsed all
 *  of them (about 10 ms per start with 1,000 containers). The database stays the truth: `load` reads it
 *  whole at start and after network create and remove. `changed` sees each row that goes or comes (the
 *  address pools follow the endpoints' addresses through it). */
export class EndpointRows {
  private rows = new Map<string, EndpointRow>();
  private byNetwork = new Map<string, Map<string, EndpointRow>>();
  private byContainer = new Map<string, Map<string, EndpointRow>>();

  constructor(private readonly changed: (before: EndpointRow | undefined, after: EndpointRow | undefined) => void) {}

  load(rows: EndpointRow[]): void {
    this.rows = new Map();
    this.byNetwork = new Map();
    this.byContainer = new Map();
    for (const r of rows) this.put(r, false);
  }

  get(networkId: string, containerId: string): EndpointRow | undefined {
    return this.rows.get(`${networkId}|${containerId}`);
  }

  all(): EndpointRow[] {
    return [...this.rows.values()];
  }

  ofNetwork(networkId: string): EndpointRow[] {
    const m = this.byNetwork.get(networkId);
    return m ? [...m.values()] : [];
  }

  ofContainer(containerId: string): EndpointRow[] {
    const m = this.byContainer.get(containerId);
    return m ? [...m.values()] : [];
  }

  /** The row, saved (after the database has it). */
  put(e: EndpointRow, notify = true): void {
    const key = `${e.networkId}|${e.containerId}`;
    const before = this.rows.get(key);
    this.drop(e.networkId, e.containerId, false);
    this.rows.set(key, e);
    inner(this.byNetwork, e.networkId).set(e.containerId, e);
    inner(this.byContainer, e.containerId).set(e.networkId, e);
    if (notify) this.changed(before, e);
  }

  /** The row, deleted (after the database deleted it). */
  drop(networkId: string, containerId: string, notify = true): void {
    const key = `${networkId}|${containerId}`;
    const before = this.rows.get(key);
    if (!before) return;
    this.rows.delete(key);
    outer(this.byNetwork, networkId, containerId);
    outer(this.byContainer, containerId, networkId);
    if (notify) this.changed(before, undefined);
  }

  dropContainer(containerId: string): void {
    for (const e of this.ofContainer(containerId)) this.drop(e.networkId, containerId);
  }
}

const inner = (m: Map<string, Map<string, EndpointRow>>, k: string) => m.get(k) ?? m.set(k, new Map()).get(k)!;
function outer(m: Map<string, Map<string, EndpointRow>>, k: string, sub: string): void {
  const x = m.get(k);
  if (!x) return;
  x.delete(sub);
  if (!x.size) m.delete(k);
}
