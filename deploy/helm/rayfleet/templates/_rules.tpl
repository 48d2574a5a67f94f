{{/* The rules of the ClusterRole (or, with singleNamespaceInstall, of the Role in each watched
     namespace): exactly the verbs and resources the code calls, each with the code that needs it.
     "watcher" is services/watcher (reflectors: list + watch only); the controllers write through
     ctrl/ctrl.c (create, delete, patch, update, get, the status subresource, finalizers, Events). */}}
{{- define "rayfleet.rules" }}
  # watcher: list+watch of the Ray resources (services/watcher/watcher.c s_kinds)
  - apiGroups: [ray.io]
    resources: [rayclusters, rayjobs, rayservices, raycronjobs]
    verbs: [list, watch]
  # submitter: creates a RayJob's RayCluster, deletes it, suspends its workers (JSON patch);
  # serve-upgrade: creates, updates and deletes a RayService's RayClusters; scheduler: the GCS
  # fault-tolerance finalizer (patch). get: only so the autoscaler Role the scheduler creates
  # (which grants get, patch on rayclusters) passes the API server's RBAC escalation check
  - apiGroups: [ray.io]
    resources: [rayclusters]
    verbs: [get, create, delete, patch, update]
  # submitter: the RayJob finalizer (patch), deletionStrategy DeleteSelf (delete) and a
  # RayCronJob's RayJobs (create)
  - apiGroups: [ray.io]
    resources: [rayjobs]
    verbs: [create, patch, delete]
  # serve-upgrade: the RayService finalizer (ctrl_finalizer, patch)
  - apiGroups: [ray.io]
    resources: [rayservices]
    verbs: [patch]
  # every controller writes its kind's status (ctrl_status_write: JSON patch of /status)
  - apiGroups: [ray.io]
    resources: [rayclusters/status, rayjobs/status, rayservices/status, raycronjobs/status]
    verbs: [patch]
  # children are created with ownerReferences blockOwnerDeletion=true (kuberay/objbuild.c,
  # podbuild.c): the OwnerReferencesPermissionEnforcement admission plugin requires update on the
  # owner's finalizers subresource
  - apiGroups: [ray.io]
    resources: [rayclusters/finalizers, rayjobs/finalizers, rayservices/finalizers,
                raycronjobs/finalizers]
    verbs: [update]
  # watcher: list+watch of Ray pods; scheduler: creates and deletes them, patches the head's
  # annotations; serve-upgrade: the head's ray.io/serve label (patch). get: only for the autoscaler
  # Role's escalation check (it grants get, list, watch, patch on pods)
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch, create, delete, patch]
  # never called: held only so the scheduler may create the autoscaler Role, which grants it
  # (kuberay/objbuild.c objbuild_role; RBAC escalation check). The alternative, escalate on roles,
  # would let the cell grant anything.
  - apiGroups: [""]
    resources: [pods/resize]
    verbs: [patch]
  # watcher: list+watch; scheduler, submitter, serve-upgrade: create head/headless/serve Services;
  # serve-upgrade: points serve Services at the ready cluster (patch), deletes per-cluster ones
  - apiGroups: [""]
    resources: [services]
    verbs: [list, watch, create, patch, delete]
  # every controller: Events about its objects (ctrl/ctrl.c, core v1 Events: create, and patch
  # of count and lastTimestamp when one repeats, as client-go's EventCorrelator)
  - apiGroups: [""]
    resources: [events]
    verbs: [create, patch]
  # scheduler: the autoscaler ServiceAccount (get: whether the user's own exists; create)
  - apiGroups: [""]
    resources: [serviceaccounts]
    verbs: [get, create]
  # scheduler: the autoscaler Role and RoleBinding (create only; the cell holds every permission
  # the Role grants, so neither bind nor escalate is needed)
  - apiGroups: [rbac.authorization.k8s.io]
    resources: [roles, rolebindings]
    verbs: [create]
  # scheduler: the auth token Secret of a RayCluster with authOptions (create only, never read)
  - apiGroups: [""]
    resources: [secrets]
    verbs: [create]
  # scheduler, gate RayClusterMTLS: reads the mTLS leaf Secrets cert-manager writes before it
  # creates pods (services/scheduler/reconcile.c s_stage_mtls)
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get]
  # scheduler, gate RayClusterMTLS (services/scheduler/reconcile.c s_stage_mtls, objects of
  # kuberay/mtls.c): creates the self-signed and the CA Issuer (create only, never read)
  - apiGroups: [cert-manager.io]
    resources: [issuers]
    verbs: [create]
  # scheduler, gate RayClusterMTLS (s_stage_mtls_api, s_stage_mtls): gets the CA Certificate
  # (whether cert-manager is installed) and the leaf Certificates, creates the CA and leaf
  # Certificates, patches the leaves' IP SANs as pod IPs appear
  - apiGroups: [cert-manager.io]
    resources: [certificates]
    verbs: [get, create, patch]
  # watcher: list+watch of a RayCluster's PVCs (label ray.io/cluster; services/watcher/watcher.c
  # s_kinds K_PVC); scheduler: the GCS fault-tolerance PVC (create only; services/scheduler/
  # reconcile.c s_stage_gcs_pvc)
  - apiGroups: [""]
    resources: [persistentvolumeclaims]
    verbs: [list, watch, create]
  # watcher: list+watch of KubeRay's Jobs; scheduler: the Redis cleanup Job; submitter: the
  # submitter Job (create) and its deletion
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [list, watch, create, delete]
  # watcher: list+watch (serve-upgrade reads ready endpoints from observed.db)
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
  # scheduler: the head Ingress (get, create, update)
  - apiGroups: [networking.k8s.io]
    resources: [ingresses]
    verbs: [get, create, update]
  # watcher: list+watch of a RayCluster's NetworkPolicies (label ray.io/cluster; watcher.c s_kinds
  # K_NETWORKPOLICY); scheduler: creates, updates and deletes them, and reads (get) a wanted one that
  # is not its child yet, to tell absent from a name collision (gate RayClusterNetworkPolicy;
  # services/scheduler/reconcile.c s_stage_netpol, s_netpol_got, kuberay/netpol.c)
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch, create, update, delete]
  # serve-upgrade: the Gateway and HTTPRoute of NewClusterWithIncrementalUpgrade (get, create,
  # update)
  - apiGroups: [gateway.networking.k8s.io]
    resources: [gateways, httproutes]
    verbs: [get, create, update]
  {{- $bs := include "rayfleet.batchScheduler" . }}
  {{- if eq $bs "volcano" }}
  # batchScheduler volcano: the scheduler creates a RayCluster's PodGroup before its pods and
  # updates its minMember/minResources (services/scheduler/reconcile.c s_stage_podgroup); the
  # submitter creates a RayJob's PodGroup at Initializing (create once)
  - apiGroups: [scheduling.volcano.sh]
    resources: [podgroups]
    verbs: [get, create, update]
  {{- end }}
  {{- if eq $bs "scheduler-plugins" }}
  # batchScheduler scheduler-plugins: the PodGroup of a gang-scheduled RayCluster (create once)
  - apiGroups: [scheduling.x-k8s.io]
    resources: [podgroups]
    verbs: [get, create]
  {{- end }}
  {{- $was := false }}
  {{- with .Values.configuration.featureGates }}{{ if .KubernetesWAS }}{{ $was = true }}{{ end }}{{ end }}
  {{- range .Values.featureGates }}{{ if eq .name "KubernetesWAS" }}{{ $was = .enabled }}{{ end }}{{ end }}
  {{- if $was }}
  # gate KubernetesWAS: the scheduler reads, creates and deletes a gang-scheduled RayCluster's
  # Workload and PodGroup, and updates a PodGroup to remove its protection finalizer
  # (services/scheduler/reconcile.c s_stage_was)
  - apiGroups: [scheduling.k8s.io]
    resources: [workloads, podgroups]
    verbs: [get, create, update, delete]
  {{- end }}
  {{- if .Values.useKubernetesProxy }}
  # useKubernetesProxy: submitter and serve-upgrade reach the Ray dashboard through the service
  # proxy (common/raydash.c: GET job info, POST submit/stop, PUT Serve config, DELETE a job)
  - apiGroups: [""]
    resources: [services/proxy]
    verbs: [get, create, update, delete]
  # useKubernetesProxy: serve-upgrade's Serve proxy health check on the head pod (GET /-/healthz)
  - apiGroups: [""]
    resources: [pods/proxy]
    verbs: [get]
  {{- end }}
{{- end -}}
