{{/* Names, labels and the checks every template shares. */}}

{{- define "rayfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "rayfleet" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-rayfleet" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rayfleet.selectorLabels" -}}
app.kubernetes.io/name: rayfleet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: cell
{{- end -}}

{{- define "rayfleet.labels" -}}
{{ include "rayfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: rayfleet
{{- end -}}

{{- define "rayfleet.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "rayfleet.fullname" .) -}}
{{- end -}}

{{/* The namespaces of a single-namespace install: watchNamespace, else the release namespace. */}}
{{- define "rayfleet.watchedNamespaces" -}}
{{- if .Values.watchNamespace -}}
{{- join "," .Values.watchNamespace -}}
{{- else if .Values.singleNamespaceInstall -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* The cell's containers: name, health port, and whether it is a controller (leader flags, the
     Kubernetes client). One image; the command is rayfleet-<name>. */}}
{{- define "rayfleet.containers" -}}
- {name: bus, port: 8086, controller: false, client: false}
- {name: watcher, port: 8082, controller: false, client: true}
- {name: scheduler, port: 8083, controller: true, client: true}
- {name: submitter, port: 8084, controller: true, client: true}
- {name: serve-upgrade, port: 8085, controller: true, client: true}
{{- end -}}

{{/* Settings rayfleet does not implement yet, or values that cannot work: the render fails naming
     them. */}}
{{- define "rayfleet.checkUnsupported" -}}
{{- if and .Values.batchScheduler.enabled .Values.batchScheduler.name -}}
{{- fail "batchScheduler: set batchScheduler.name (enabled is KubeRay's deprecated switch for volcano), not both" -}}
{{- end -}}
{{- with .Values.batchScheduler.name -}}
{{- if not (has . (list "volcano" "yunikorn" "kai-scheduler" "scheduler-plugins")) -}}
{{- fail (printf "batchScheduler.name=%s: must be one of volcano, yunikorn, kai-scheduler, scheduler-plugins" .) -}}
{{- end -}}
{{- end -}}
{{- if .Values.members -}}
{{- fail "members: member clusters (federation) are not supported by rayfleet yet; leave members empty" -}}
{{- end -}}
{{- if .Values.audit.retention -}}
{{- fail (printf "audit.retention=%s: automatic audit retention is not supported by rayfleet yet (prune with `rayfleetctl audit prune`); leave audit.retention empty" .Values.audit.retention) -}}
{{- end -}}
{{- if .Values.bus.curveKeysSecret -}}
{{- fail (printf "bus.curveKeysSecret=%s: CurveZMQ keys from a Secret are not supported by the chart yet (the bus listens on 127.0.0.1 inside the pod); leave bus.curveKeysSecret empty" .Values.bus.curveKeysSecret) -}}
{{- end -}}
{{- if not (has (toString .Values.shards.lease) (list "off" "kubernetes")) -}}
{{- fail (printf "shards.lease=%v: want off or kubernetes (sqlite leases work only inside one pod)" .Values.shards.lease) -}}
{{- end -}}
{{- range .Values.featureGates -}}
{{- if not (and (kindIs "map" .) .name (hasKey . "enabled")) -}}
{{- fail (printf "featureGates: each entry needs name and enabled, e.g. {name: RayJobDeletionPolicy, enabled: false}; got %v" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The batch scheduler in force: batchScheduler.name, else volcano for the deprecated
     batchScheduler.enabled, else empty. */}}
{{- define "rayfleet.batchScheduler" -}}
{{- if .Values.batchScheduler.name -}}
{{- .Values.batchScheduler.name -}}
{{- else if .Values.batchScheduler.enabled -}}
volcano
{{- end -}}
{{- end -}}
