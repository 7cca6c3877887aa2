# Derives api-spec/responses/*.json from Docker's own answers (Docker 20.10, API 1.41: the samples of the
# project's docs, docs/samples/*.json): types and required fields as Docker returns them, plus the choices
# below where one sample cannot tell (maps, fields dropped by later API versions, ids and times).
#   python3 api-spec/derive-responses.py <samples dir>
# Edit this script, not its output.
import json, collections, sys, os
S=sys.argv[1].rstrip('/')+'/'
OUT=os.path.join(os.path.dirname(os.path.abspath(__file__)),'responses')+'/'
# Keys whose objects are maps (names chosen by the user or the data), not structs.
MAPS={'Labels','Options','Networks','Ports','ExposedPorts','Volumes','Containers','DriverOpts','Attributes','Data',
      'IndexConfigs','Runtimes','Status','Sysctls','Tmpfs','StorageOpt','Annotations','Config@LogConfig','Config@ContainerConfig',
      'Aux','PortBindings','networks','stats@memory_stats'}
known=collections.defaultdict(list)
STRICT_MAPS={'Labels','Options'}
def kind(v):
    if v is None: return 'null'
    if isinstance(v,bool): return 'boolean'
    if isinstance(v,int): return 'integer'
    if isinstance(v,float): return 'number'
    if isinstance(v,str): return 'string'
    if isinstance(v,list): return 'array'
    return 'object'
def collect(v,key=None,parent=None):
    # by parent and key: the same name means different things in different places (PidsLimit)
    if key is not None and v is not None: known[(parent,key)].append(v)
    if isinstance(v,dict):
        for k,x in v.items(): collect(x,k,key)
    elif isinstance(v,list):
        for x in v: collect(x,None,key)
import glob
for f in glob.glob(S+'*.json'): collect(json.load(open(f)))
def ismap(key,parent):
    return key in MAPS or f'{key}@{parent}' in MAPS
def merge(a,b):
    # merge two schemas of the same slot
    if a is None: return b
    if b is None: return a
    ta=a.get('type',[]); tb=b.get('type',[])
    ta=[ta] if isinstance(ta,str) else ta; tb=[tb] if isinstance(tb,str) else tb
    out=dict(a); t=sorted(set(ta)|set(tb))
    if 'properties' in a or 'properties' in b:
        pa=a.get('properties',{}); pb=b.get('properties',{})
        props={k:merge(pa.get(k),pb.get(k)) for k in list(pa)+[k for k in pb if k not in pa]}
        out['properties']=props
        out['required']=[k for k in a.get('required',[]) if k in b.get('required',[])] if ('required' in a and 'required' in b) else a.get('required',b.get('required',[]))
    if 'items' in a or 'items' in b: out['items']=merge(a.get('items'),b.get('items')) or {}
    if 'additionalProperties' in a or 'additionalProperties' in b: out['additionalProperties']=merge(a.get('additionalProperties'),b.get('additionalProperties')) or {}
    if a.get('pattern')!=b.get('pattern'): out.pop('pattern',None)
    for f in ('_null','_empty','_content'):
        if a.get(f) or b.get(f): out[f]=True
    t=[x for x in t if x!='null']
    if len(t)==1: out['type']=t[0]
    elif t: out['type']=t
    return out
STRS={'type':'array','items':{'type':'string'}}
# What a field is where every answer of the samples has null there (Engine API reference).
NULL_HINTS={**{k:STRS for k in ['ExecIDs','VolumesFrom','CapAdd','CapDrop','ExtraHosts','GroupAdd','Links','SecurityOpt',
  'DeviceCgroupRules','Entrypoint','OnBuild','Aliases','Warnings','Authorization','DNSNames']},
  **{k:{'type':'array'} for k in ['DeviceRequests','GenericResources','RemoteManagers','SecondaryIPAddresses','SecondaryIPv6Addresses']},
  **{k:{'type':'object'} for k in ['IPAMConfig','DriverOpts']},
  **{k:{'type':'integer'} for k in ['MemorySwappiness','PidsLimit']}}
# Lists Docker fills even when empty ([]), never null, though the samples only show them with entries.
NOT_NULL={'ContainerInspect':['Mounts'],'ContainerList':['[]/Names'],'ImageInspect':['RepoTags','RepoDigests','RootFS/Layers'],'SystemInfo':['SecurityOptions']}
def guess(key,parent,depth=0):
    vals=known.get((parent,key),[])
    s=None
    for v in vals[:20]:
        s=merge(s,schema(v,key,parent,depth+1,nullguess=False))
    return s
def schema(v,key=None,parent=None,depth=0,nullguess=True):
    k=kind(v)
    if k=='null':
        g=guess(key,parent,depth) if (nullguess and key and depth<6) else None
        # null in Docker's answer: the type of the same field where another answer has a value, or any
        if g:
            g=dict(g); g.pop('required',None); g.pop('pattern',None); g.pop('_empty',None); g.pop('_content',None)
            return {**g, '_null': True}
        if key in NULL_HINTS: return {**NULL_HINTS[key], '_null': True}
        return {'_null': True}
    if k=='array':
        items=None
        for x in v: items=merge(items,schema(x,None,key,depth+1))
        # A list with entries in Docker's answer may be null when empty (a Go slice), unless an answer shows
        # it empty: then it is [] (finalize).
        return {'type':'array','items':items or {},'_empty':not v,'_content':bool(v)}
    if k=='object':
        if ismap(key,parent):
            ap=None
            for x in v.values(): ap=merge(ap,schema(x,None,key,depth+1))
            # Labels and Options are objects ({} when empty) unless Docker's answer shows a null there
            return {'type':'object','additionalProperties':ap or {},'_empty':not v or key in STRICT_MAPS,'_content':bool(v)}
        return {'type':'object','required':list(v.keys()),'properties':{x:schema(y,x,key,depth+1) for x,y in v.items()}}
    if k=='number': return {'type':'number'}
    if k=='integer': return {'type':'integer'}
    if k=='string':
        for rx,pattern,keys in PATTERNS:
            if (keys=='*' or key in keys) and re.fullmatch(rx,v): return {'type':'string','pattern':pattern}
    return {'type':k}
import re
TIME=r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?(Z|[+-]\d\d:\d\d)$'
# Ids as Docker writes them (64 hex; images with sha256:), the empty string where an object has none yet
# (a stopped container's EndpointID); times as Go's RFC3339Nano (no trailing zeros in the fraction).
PATTERNS=[(r'[0-9a-f]{64}', '^([0-9a-f]{64})?$', {'Id','ID','ContainerID','NetworkID','EndpointID','SandboxID','execID','container'}),
          (r'sha256:[0-9a-f]{64}', '^(sha256:[0-9a-f]{64})?$', {'Id','ID','Image','ImageID','ParentId'}),
          (TIME[1:-1], TIME, '*'),
          # BuildTime is a fixed string made when Docker was built (nine digits, +00:00)
          (r'\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)', r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$', '*')]
def finalize(s, top=False):
    """Turns the flags into types: nullable where Docker sent null, or a list/map it sent with entries and
    never empty; never at the top of an answer."""
    if not isinstance(s,dict): return s
    nullable=(s.pop('_null',False) or (s.get('_content') and not s.get('_empty'))) and not top
    s.pop('_empty',None); s.pop('_content',None)
    if nullable and 'type' in s:
        t=s['type']; t=[t] if isinstance(t,str) else list(t)
        s['type']=t+['null'] if 'null' not in t else t
    for k in ('items','additionalProperties'):
        if isinstance(s.get(k),dict): finalize(s[k])
    for v in s.get('properties',{}).values(): finalize(v)
    return s
# Fields of the samples (API 1.41) that Docker dropped in later API versions, or leaves out when empty
# (omitempty): not required. Their type is still checked when they are there.
CONFIG_OMITEMPTY=['ExposedPorts','Healthcheck','ArgsEscaped','MacAddress','NetworkDisabled','StopSignal','StopTimeout','Shell']
NOTREQ={
 'ContainerInspect':{'HostConfig':['KernelMemory','KernelMemoryTCP'],'Mounts/[]':['Name','Driver'],'Config':CONFIG_OMITEMPTY},
 'ImageInspect':{'':['Container','ContainerConfig','VirtualSize','Parent','Comment','DockerVersion','Author'],'Config':['*'],'ContainerConfig':CONFIG_OMITEMPTY},
 'ImageList':{'[]':['VirtualSize']},
 'ContainerList':{'[]/Ports/[]':['IP','PublicPort'],'[]/Mounts/[]':['Name','Driver']},
 'SystemDf':{'Images/[]':['VirtualSize'],'Containers/[]/Ports/[]':['IP','PublicPort'],'Containers/[]/Mounts/[]':['Name','Driver']},
 'SystemInfo':{'':['KernelMemory','KernelMemoryTCP','BridgeNfIptables','BridgeNfIp6tables','GenericResources'],'ContainerdCommit':['Expected'],'RuncCommit':['Expected'],'InitCommit':['Expected'],
   'RegistryConfig':['AllowNondistributableArtifactsCIDRs','AllowNondistributableArtifactsHostnames']},
 'EventMessage':{'':['status','id','from']},
 # cgroup v2 has no max_usage (memory_stats.stats is the kernel's memory.stat, v1 or v2 keys)
 'ContainerStats':{'memory_stats':['max_usage']},
}
UNTIL={
 'ImageInspect':{'':{'1.43':['VirtualSize'],'1.44':['Container','ContainerConfig']}},
 'ImageList':{'[]':{'1.43':['VirtualSize']}},
 'SystemDf':{'Images/[]':{'1.43':['VirtualSize']}},
}
jobs=[('ContainerInspect','container-inspect.json',False),('ContainerList','containers-list.json',False),('ImageInspect','image-inspect.json',False),
('ImageList','images-list.json',False),('NetworkInspect','network-inspect.json',False),('NetworkList','networks-list.json',False),
('VolumeInspect','volume-inspect.json',False),('VolumeList','volumes-list.json',False),('ExecInspect','exec-inspect.json',False),
('ContainerTop','container-top.json',False),('ContainerChanges','container-changes.json',False),('ContainerStats','stats-stream0.json',False),
('SystemInfo','info.json',False),('SystemVersion','version.json',False),('SystemDf','system-df.json',False),('EventMessage','events.json',True),('ImageHistory','image-history.json',False)]
for name,f,each in jobs:
    d=json.load(open(S+f))
    if name=='NetworkInspect':
        s=schema(d)
        for x in json.load(open(S+'networks-list.json')): s=merge(s,schema(x))
    elif name=='ContainerInspect':
        s=merge(schema(d),schema(json.load(open(S+'container-inspect-size.json'))))
    elif name=='ContainerStats':
        # stream=0 and the first two of stream=1 (the first with precpu_stats empty)
        s=schema(d)
        for x in json.load(open(S+'stats-stream1-first-two.json')): s=merge(s,schema(x))
    elif name=='ExecInspect':
        d2=json.load(open(S+'exec-inspect-running.json'))
        s=merge(schema(d),schema(d2))
    elif each:
        s=None
        for x in d: s=merge(s,schema(x))
    else:
        s=schema(d)
    for p in NOT_NULL.get(name,[]):
        node=s
        for k in p.split('/'):
            node=node['items'] if k=='[]' else node['properties'][k]
        node.pop('_content',None)
    finalize(s, top=True)
    for p,fields in NOTREQ.get(name,{}).items():
        node=s
        for k in p.split('/'):
            if not k: continue
            node=node['items'] if k=='[]' else node['properties'][k]
        node['required']=[x for x in node.get('required',[]) if x not in fields and '*' not in fields]
    # Required up to an API version, after which Docker dropped them (Engine API version history).
    for p,until in UNTIL.get(name,{}).items():
        node=s
        for k in p.split('/'):
            if not k: continue
            node=node['items'] if k=='[]' else node['properties'][k]
        node['x-required-until']=until
    if name=='ImageInspect':
        # a committed image keeps the image name its container was made from
        for c in ('Config','ContainerConfig'): s['properties'][c]['properties']['Image'].pop('pattern',None)
        # an image without labels has null there (traces/inspect.txt: busybox)
        for c in ('Config','ContainerConfig'): s['properties'][c]['properties']['Labels']['type']=['object','null']
    if name=='ContainerInspect':
        # State.Health is in none of the samples: its shape from the Engine API reference, with times as above
        s['properties']['State']['properties']['Health']={'type':'object','required':['Status','FailingStreak','Log'],'properties':{
            'Status':{'type':'string','enum':['none','starting','healthy','unhealthy']},'FailingStreak':{'type':'integer'},
            'Log':{'type':['array','null'],'items':{'type':'object','required':['Start','End','ExitCode','Output'],'properties':{
                'Start':{'type':'string','pattern':TIME},'End':{'type':'string','pattern':TIME},'ExitCode':{'type':'integer'},'Output':{'type':'string'}}}}}}
    if name=='ImageHistory':
        # layers of images made elsewhere have no image of their own here
        s['items']['properties']['Id']['pattern']='^(sha256:[0-9a-f]{64}|<missing>)$'
    out=collections.OrderedDict([('$id',name),('description',f'Answer of {name}: derived by api-spec/derive-responses.py from Docker\'s answer in docs/samples/{f} (API 1.41); fields Docker dropped later are required only up to the version in x-required-until.'),])
    out.update(s)
    open(OUT+name+'.json','w').write(json.dumps(out,indent=2)+'\n')
    print(name, len(json.dumps(out)))
