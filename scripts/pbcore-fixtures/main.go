// pbcore-fixtures writes the protobuf test fixtures of kubesim's core/v1 schema
// (sim/proto/k8s/core_v1.proto) with the real Kubernetes Go types of k8s.io/api v0.32.0, so that
// the C tests check our schema and transcoder against the reference encoder, never against
// themselves. Nothing of upstream is copied: the outputs are our objects, encoded.
//
// For every served core/v1 kind and its List:
//
//	fill/<Kind>.pb       the object with every field set (gofuzz, fixed seed, no nil), as
//	                     Kubernetes' generated Marshal() writes it (a List with one small item
//	                     and a PodTemplate with a small pod: their messages are filled in the
//	                     kinds' own fixtures)
//	fill/<Kind>.json     the same object as Kubernetes' JSON (encoding/json), nulls removed
//	zero/<Kind>.pb       the object with every pointer, slice and map set and every scalar
//	zero/<Kind>.json     zero: the wire has every field, the JSON the zeros Kubernetes keeps
//
// For every realistic object <name>.json in the fixture folder (kubesim's own objects, read back
// with kubectl -o json):
//
//	<name>.pb            the object decoded strictly (an unknown field is an error) into its Go
//	                     type and encoded with Marshal()
//	<name>.go.json       that Go object as JSON, nulls removed (what kube-apiserver answers)
//
// usage: go run . [-dir tests/golden/pbcore]   (run from scripts/pbcore-fixtures)
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	fuzz "github.com/google/gofuzz"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type marshaler interface {
	Marshal() ([]byte, error)
}

// The served core/v1 kinds (sim/apiserver.c s_builtins, plus ResourceQuota and LimitRange,
// Binding for pods/binding and PodTemplate for the apps/batch templates).
func kinds() map[string]func() marshaler {
	return map[string]func() marshaler{
		"Namespace":                 func() marshaler { return &corev1.Namespace{} },
		"NamespaceList":             func() marshaler { return &corev1.NamespaceList{} },
		"Pod":                       func() marshaler { return &corev1.Pod{} },
		"PodList":                   func() marshaler { return &corev1.PodList{} },
		"Service":                   func() marshaler { return &corev1.Service{} },
		"ServiceList":               func() marshaler { return &corev1.ServiceList{} },
		"Endpoints":                 func() marshaler { return &corev1.Endpoints{} },
		"EndpointsList":             func() marshaler { return &corev1.EndpointsList{} },
		"Node":                      func() marshaler { return &corev1.Node{} },
		"NodeList":                  func() marshaler { return &corev1.NodeList{} },
		"Event":                     func() marshaler { return &corev1.Event{} },
		"EventList":                 func() marshaler { return &corev1.EventList{} },
		"ConfigMap":                 func() marshaler { return &corev1.ConfigMap{} },
		"ConfigMapList":             func() marshaler { return &corev1.ConfigMapList{} },
		"Secret":                    func() marshaler { return &corev1.Secret{} },
		"SecretList":                func() marshaler { return &corev1.SecretList{} },
		"ServiceAccount":            func() marshaler { return &corev1.ServiceAccount{} },
		"ServiceAccountList":        func() marshaler { return &corev1.ServiceAccountList{} },
		"PersistentVolumeClaim":     func() marshaler { return &corev1.PersistentVolumeClaim{} },
		"PersistentVolumeClaimList": func() marshaler { return &corev1.PersistentVolumeClaimList{} },
		"PersistentVolume":          func() marshaler { return &corev1.PersistentVolume{} },
		"PersistentVolumeList":      func() marshaler { return &corev1.PersistentVolumeList{} },
		"ResourceQuota":             func() marshaler { return &corev1.ResourceQuota{} },
		"ResourceQuotaList":         func() marshaler { return &corev1.ResourceQuotaList{} },
		"LimitRange":                func() marshaler { return &corev1.LimitRange{} },
		"LimitRangeList":            func() marshaler { return &corev1.LimitRangeList{} },
		"Binding":                   func() marshaler { return &corev1.Binding{} },
		"PodTemplate":               func() marshaler { return &corev1.PodTemplate{} },
		"PodTemplateList":           func() marshaler { return &corev1.PodTemplateList{} },
	}
}

// filler sets every field: no nil pointer, slice or map (one element each), short ASCII strings,
// and values of the special types that their own encoders accept.
func filler(seed int64) *fuzz.Fuzzer {
	n := 0
	return fuzz.NewWithSeed(seed).NilChance(0).NumElements(1, 1).Funcs(
		func(s *string, c fuzz.Continue) {
			n++
			*s = fmt.Sprintf("s%d", n)
		},
		func(b *[]byte, c fuzz.Continue) {
			n++
			*b = []byte{byte(n), 0, 0xff, byte(c.Intn(256))}
		},
		func(q *resource.Quantity, c fuzz.Continue) {
			*q = *resource.NewMilliQuantity(1+c.Int63n(100000), resource.DecimalSI)
		},
		func(t *metav1.Time, c fuzz.Continue) {
			*t = metav1.Unix(1+c.Int63n(2000000000), 0).Rfc3339Copy()
		},
		func(t *metav1.MicroTime, c fuzz.Continue) {
			*t = metav1.NewMicroTime(time.Unix(1+c.Int63n(2000000000), c.Int63n(1000000)*1000).UTC())
		},
		func(v *intstr.IntOrString, c fuzz.Continue) {
			if c.RandBool() {
				*v = intstr.FromInt32(c.Int31n(65535))
			} else {
				n++
				*v = intstr.FromString(fmt.Sprintf("port%d", n))
			}
		},
		func(r *runtime.RawExtension, c fuzz.Continue) {
			r.Raw = []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`)
		},
		func(f *metav1.FieldsV1, c fuzz.Continue) {
			f.Raw = []byte(`{"f:metadata":{"f:labels":{}}}`)
		},
	)
}

// clearTypeMeta zeroes every embedded TypeMeta (the wire has none: apiVersion and kind travel in
// the envelope), so that the filled object's JSON has what its message has.
func clearTypeMeta(v reflect.Value) {
	switch v.Kind() {
	case reflect.Ptr:
		if !v.IsNil() {
			clearTypeMeta(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			clearTypeMeta(v.Index(i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.Anonymous && f.Type == reflect.TypeOf(metav1.TypeMeta{}) {
				v.Field(i).Set(reflect.Zero(f.Type))
			} else if f.IsExported() {
				clearTypeMeta(v.Field(i))
			}
		}
	}
}

// zeroFill sets every pointer, slice and map to one zero value (map key "k"), recursively, and
// leaves every scalar at its zero: the wire then has every field, each with its zero, and JSON
// shows which zeros Kubernetes keeps (pointers, tags without omitempty) and which it omits.
func zeroFill(v reflect.Value, depth int) {
	if depth > 40 {
		return
	}
	switch v.Kind() {
	case reflect.Ptr:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		zeroFill(v.Elem(), depth+1)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		zeroFill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		k.SetString("k")
		e := reflect.New(v.Type().Elem()).Elem()
		zeroFill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		switch v.Addr().Interface().(type) {
		case *metav1.Time, *metav1.MicroTime, *resource.Quantity, *intstr.IntOrString,
			*runtime.RawExtension, *metav1.FieldsV1:
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				zeroFill(v.Field(i), depth+1)
			}
		}
	}
}

// slim keeps the big messages once: a List's items become one item with only a name, a
// PodTemplate's pod spec one container (their messages are filled in their own kind's fixture).
func slim(obj marshaler) {
	if t, ok := obj.(*corev1.PodTemplate); ok {
		t.Template.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}
		return
	}
	v := reflect.ValueOf(obj).Elem()
	// a workload's pod template (apps, batch) holds a small pod too
	if spec := v.FieldByName("Spec"); spec.IsValid() && spec.Kind() == reflect.Struct {
		if t := spec.FieldByName("Template"); t.IsValid() && t.Type() == reflect.TypeOf(corev1.PodTemplateSpec{}) {
			t.FieldByName("Spec").Set(reflect.ValueOf(corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}))
		}
	}
	items := v.FieldByName("Items")
	if !items.IsValid() || items.Kind() != reflect.Slice {
		return
	}
	s := reflect.MakeSlice(items.Type(), 1, 1)
	s.Index(0).FieldByName("ObjectMeta").FieldByName("Name").SetString("item")
	items.Set(s)
}

// withoutNulls drops every null member (Go writes null for a zero Time or a nil slice whose tag
// has no omitempty; kubesim stores no null).
func withoutNulls(v interface{}) interface{} {
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = withoutNulls(e)
		}
	case []interface{}:
		for i, e := range x {
			x[i] = withoutNulls(e)
		}
	}
	return v
}

func goJSON(obj interface{}) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var v interface{}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(withoutNulls(v), "", "  ")
	return append(out, '\n'), err
}

func write(path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// writeFixtures writes fill/ and zero/ under dir for every kind of ks (file names by name()).
func writeFixtures(dir string, ks map[string]func() marshaler, name func(string) string) {
	names := make([]string, 0, len(ks))
	for k := range ks {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, sub := range []string{"fill", "zero"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for i, k := range names {
		obj := ks[k]()
		filler(int64(1000 + i)).Fuzz(obj)
		clearTypeMeta(reflect.ValueOf(obj))
		slim(obj)
		pb, err := obj.Marshal()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", k, err)
			os.Exit(1)
		}
		js, err := goJSON(obj)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", k, err)
			os.Exit(1)
		}
		write(filepath.Join(dir, "fill", name(k)+".pb"), pb)
		write(filepath.Join(dir, "fill", name(k)+".json"), js)
	}
	for _, k := range names {
		obj := ks[k]()
		zeroFill(reflect.ValueOf(obj), 0)
		clearTypeMeta(reflect.ValueOf(obj))
		slim(obj)
		pb, err := obj.Marshal()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", k, err)
			os.Exit(1)
		}
		js, err := goJSON(obj)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", k, err)
			os.Exit(1)
		}
		write(filepath.Join(dir, "zero", name(k)+".pb"), pb)
		write(filepath.Join(dir, "zero", name(k)+".json"), js)
	}
}

func main() {
	dir := flag.String("dir", "../../tests/golden/pbcore", "fixture folder")
	flag.Parse()
	if err := os.MkdirAll(filepath.Join(*dir, "fill"), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ks := kinds()
	writeFixtures(*dir, ks, func(k string) string { return k })
	// the other groups' served kinds (groups.go), named <group>_<version>_<Kind>
	writeFixtures(filepath.Join(*dir, "groups"), groupKinds(), groupFile)
	files, _ := filepath.Glob(filepath.Join(*dir, "*.json"))
	for _, f := range files {
		if strings.HasSuffix(f, ".go.json") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(src, &tm); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
			os.Exit(1)
		}
		mk, ok := ks[tm.Kind]
		if tm.APIVersion != "v1" || !ok {
			fmt.Fprintf(os.Stderr, "%s: %s %s is no served core/v1 kind\n", f, tm.APIVersion, tm.Kind)
			os.Exit(1)
		}
		obj := mk()
		d := json.NewDecoder(bytes.NewReader(src))
		d.DisallowUnknownFields()
		if err := d.Decode(obj); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
			os.Exit(1)
		}
		pb, err := obj.Marshal()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
			os.Exit(1)
		}
		js, err := goJSON(obj)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
			os.Exit(1)
		}
		base := strings.TrimSuffix(f, ".json")
		write(base+".pb", pb)
		write(base+".go.json", js)
	}
}
