package main

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// groupKinds: the served kinds of the other groups (sim/apiserver.c s_builtins, /scale's Scale,
// serviceaccounts/token's TokenRequest, meta's Status), keyed "<apiVersion> <Kind>".
func groupKinds() map[string]func() marshaler {
	return map[string]func() marshaler{
		"apps/v1 Deployment":                                  func() marshaler { return &appsv1.Deployment{} },
		"apps/v1 DeploymentList":                              func() marshaler { return &appsv1.DeploymentList{} },
		"apps/v1 ReplicaSet":                                  func() marshaler { return &appsv1.ReplicaSet{} },
		"apps/v1 ReplicaSetList":                              func() marshaler { return &appsv1.ReplicaSetList{} },
		"apps/v1 StatefulSet":                                 func() marshaler { return &appsv1.StatefulSet{} },
		"apps/v1 StatefulSetList":                             func() marshaler { return &appsv1.StatefulSetList{} },
		"batch/v1 Job":                                        func() marshaler { return &batchv1.Job{} },
		"batch/v1 JobList":                                    func() marshaler { return &batchv1.JobList{} },
		"rbac.authorization.k8s.io/v1 Role":                   func() marshaler { return &rbacv1.Role{} },
		"rbac.authorization.k8s.io/v1 RoleList":               func() marshaler { return &rbacv1.RoleList{} },
		"rbac.authorization.k8s.io/v1 RoleBinding":            func() marshaler { return &rbacv1.RoleBinding{} },
		"rbac.authorization.k8s.io/v1 RoleBindingList":        func() marshaler { return &rbacv1.RoleBindingList{} },
		"rbac.authorization.k8s.io/v1 ClusterRole":            func() marshaler { return &rbacv1.ClusterRole{} },
		"rbac.authorization.k8s.io/v1 ClusterRoleList":        func() marshaler { return &rbacv1.ClusterRoleList{} },
		"rbac.authorization.k8s.io/v1 ClusterRoleBinding":     func() marshaler { return &rbacv1.ClusterRoleBinding{} },
		"rbac.authorization.k8s.io/v1 ClusterRoleBindingList": func() marshaler { return &rbacv1.ClusterRoleBindingList{} },
		"networking.k8s.io/v1 Ingress":                        func() marshaler { return &networkingv1.Ingress{} },
		"networking.k8s.io/v1 IngressList":                    func() marshaler { return &networkingv1.IngressList{} },
		"networking.k8s.io/v1 NetworkPolicy":                  func() marshaler { return &networkingv1.NetworkPolicy{} },
		"networking.k8s.io/v1 NetworkPolicyList":              func() marshaler { return &networkingv1.NetworkPolicyList{} },
		"discovery.k8s.io/v1 EndpointSlice":                   func() marshaler { return &discoveryv1.EndpointSlice{} },
		"discovery.k8s.io/v1 EndpointSliceList":               func() marshaler { return &discoveryv1.EndpointSliceList{} },
		"coordination.k8s.io/v1 Lease":                        func() marshaler { return &coordinationv1.Lease{} },
		"coordination.k8s.io/v1 LeaseList":                    func() marshaler { return &coordinationv1.LeaseList{} },
		"events.k8s.io/v1 Event":                              func() marshaler { return &eventsv1.Event{} },
		"events.k8s.io/v1 EventList":                          func() marshaler { return &eventsv1.EventList{} },
		"storage.k8s.io/v1 StorageClass":                      func() marshaler { return &storagev1.StorageClass{} },
		"storage.k8s.io/v1 StorageClassList":                  func() marshaler { return &storagev1.StorageClassList{} },
		"authentication.k8s.io/v1 TokenRequest":               func() marshaler { return &authenticationv1.TokenRequest{} },
		"autoscaling/v1 Scale":                                func() marshaler { return &autoscalingv1.Scale{} },
		"meta.k8s.io/v1 Status":                               func() marshaler { return &metav1.Status{} },
	}
}

// groupFile: "apps/v1 Deployment" -> "apps_v1_Deployment" (the C test reads the apiVersion back).
func groupFile(k string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(k)
}
