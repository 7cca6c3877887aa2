// The network parts of container and network inspect and list views.
import type { ContainerRecord } from '../containers/model';
import { shortId } from '../lib/ids';
import type { EndpointRow, NetworkRow } from './store';
import { parseCidr } from './ipam/ipam';
import { isV6, parseCidr6 } from './ipam/ipam6';
import type { NetworkService } from './service';

/** The Ports column of GET /containers/json. */
export function portList(svc: NetworkService, rec: ContainerRecord, running: boolean): Array<Record<string, unknown>> {
  return svc.ports.list(rec, running);
}

/** NetworkSettings of GET /containers/{id}/json. */
export function settings(svc: NetworkService, rec: ContainerRecord, running: boolean): Record<string, unknown> {
  const mode: string = rec.hostConfig.NetworkMode || 'default';
  const eps = svc.endpointsOfContainer(rec.id);
  const networks: Record<string, unknown> = {};
  const view = (n: NetworkRow, e: EndpointRow | undefined) => {
    const up = running && !!e?.hostIf;
    const prefix = n.subnet ? parseCidr(n.subnet).prefix : 0;
    const v6 = up && !!e!.ip6;
    const ll = e?.linkLocalIps ?? [];
    return {
      IPAMConfig: e && (e.staticIp || e.staticIp6 || ll.length)
        ? { ...(e!.staticIp ? { IPv4Address: e!.staticIp } : {}), ...(e!.staticIp6 ? { IPv6Address: e!.staticIp6 } : {}), ...(ll.length ? { LinkLocalIPs: ll } : {}) }
        : null,
      Links: e?.links?.length ? e.links : null,
      // null when none were given, as Docker shows it from API 1.45 (docker-py checks for None).
      Aliases: e && n.name !== 'bridge' && e.aliases.length ? e.aliases : null,
      MacAddress: up ? e!.mac : e?.staticMac ?? '',
      DriverOpts: e?.driverOpts && Object.keys(e.driverOpts).length ? e.driverOpts : null,
      GwPriority: e?.gwPriority ?? 0,
      NetworkID: n.id,
      EndpointID: up ? e!.endpointId : '',
      Gateway: up ? n.gateway : '',
      IPAddress: up ? e!.ip : '',
      IPPrefixLen: up ? prefix : 0,
      IPv6Gateway: v6 ? n.gateway6 : '',
      GlobalIPv6Address: v6 ? e!.ip6 : '',
      GlobalIPv6PrefixLen: v6 ? parseCidr6(n.subnet6).prefix : 0,
      DNSNames: e && n.name !== 'bridge' ? [rec.name.slice(1), ...e.aliases, shortId(rec.id)] : null,
    };
  };
  for (const e of eps) {
    const n = svc.nets.get(e.networkId);
    if (n) networks[n.name] = view(n, e);
  }
  if (mode === 'host' || mode === 'none') {
    const n = svc.byName(mode);
    if (n) networks[mode] = view(n, undefined);
  }
  const bridgeEp = eps.find((e) => svc.nets.get(e.networkId)?.name === 'bridge');
  const b = bridgeEp ? (networks.bridge as Record<string, unknown>) : undefined;
  const sandbox = running && (eps.length > 0 || mode === 'none');
  return {
    Bridge: '',
    SandboxID: running ? rec.id : '',
    SandboxKey: sandbox ? svc.netns.pathOf(shortId(rec.id)) : running && mode.startsWith('container:') ? '' : running && mode === 'host' ? '' : '',
    Ports: svc.ports.view(rec, running),
    HairpinMode: false,
    // Docker never fills these (the API marks them deprecated); the addresses are in Networks.
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: (b?.EndpointID as string) ?? '',
    Gateway: (b?.Gateway as string) ?? '',
    GlobalIPv6Address: (b?.GlobalIPv6Address as string) ?? '',
    GlobalIPv6PrefixLen: (b?.GlobalIPv6PrefixLen as number) ?? 0,
    IPAddress: (b?.IPAddress as string) ?? '',
    IPPrefixLen: (b?.IPPrefixLen as number) ?? 0,
    IPv6Gateway: (b?.IPv6Gateway as string) ?? '',
    MacAddress: (b?.MacAddress as string) ?? '',
    Networks: networks,
  };
}

/** GET /networks/{id}. */
export function inspect(svc: NetworkService, n: NetworkRow, verbose = false): Record<string, unknown> {
  void verbose;
  const containers: Record<string, unknown> = {};
  if (n.driver === 'bridge') {
    for (const e of svc.endpointsOf(n.id)) {
      if (!e.hostIf || !svc.d.containers.isRunningId(e.containerId)) continue;
      let name = '';
      try { name = svc.d.containers.lookup(e.containerId).rec.name.slice(1); } catch { continue; }
      containers[e.containerId] = { Name: name, EndpointID: e.endpointId, MacAddress: e.mac, IPv4Address: e.ip ? `${e.ip}/${parseCidr(n.subnet).prefix}` : '',
        IPv6Address: e.ip6 ? `${e.ip6}/${parseCidr6(n.subnet6).prefix}` : '' };
    }
  } else {
    for (const l of svc.d.containers.all()) {
      if ((l.rec.hostConfig.NetworkMode === n.name) && svc.d.containers.isRunningId(l.rec.id)) {
        containers[l.rec.id] = { Name: l.rec.name.slice(1), EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' };
      }
    }
  }
  const cfg: Record<string, unknown>[] = [];
  if (n.subnet) {
    const c: Record<string, unknown> = { Subnet: n.subnet };
    if (n.ipRange) c.IPRange = n.ipRange;
    // As Docker shows IPAM.Config: as given (no Gateway when only a subnet was), or the chosen subnet with
    // its gateway.
    if (!n.gatewayImplied) c.Gateway = n.gateway;
    const aux4 = Object.fromEntries(Object.entries(n.aux).filter(([, a]) => !isV6(a)));
    if (Object.keys(aux4).length) c.AuxiliaryAddresses = aux4;
    cfg.push(c);
  }
  if (n.ipv6 && n.subnet6) {
    const c: Record<string, unknown> = { Subnet: n.subnet6 };
    if (n.ipRange6) c.IPRange = n.ipRange6;
    if (!n.gateway6Implied) c.Gateway = n.gateway6;
    const aux6 = Object.fromEntries(Object.entries(n.aux).filter(([, a]) => isV6(a)));
    if (Object.keys(aux6).length) c.AuxiliaryAddresses = aux6;
    cfg.push(c);
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    // An IPv6-only network has no IPv4 subnet; host and none have no addresses of their own (Docker 28
    // shows false for both).
    EnableIPv4: n.driver === 'bridge' && !!n.subnet,
    EnableIPv6: n.ipv6,
    IPAM: { Driver: 'default', Options: n.name === 'bridge' || n.driver !== 'bridge' ? null : n.ipamOptions ?? null, Config: cfg },
    Internal: n.internal,
    Attachable: n.attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: n.options,
    Labels: n.labels,
  };
}

/** Whether a network has endpoints (of any container, running or not): `rm` and `prune` keep it. */
export function inUse(svc: NetworkService, n: NetworkRow): boolean {
  return svc.endpointsOf(n.id).length > 0;
}
