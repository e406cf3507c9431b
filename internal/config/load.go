// Package config loads egate's configuration: the embedded defaults, then a
// YAML file, then EGATE_* environment variables, then --set flags, each layer
// over the one before. It is strict: an unknown key in the file, an unknown
// EGATE_<SECTION>_<KEY> variable for a known section, or an unknown --set key
// is an error that names the key, and every section validates itself.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("config")

// EnvPrefix starts every environment variable that sets a config key:
// EGATE_DATABASE_DSN sets database.dsn; dashes in keys become underscores.
const EnvPrefix = "EGATE_"

// LoadFile decodes YAML from path into dst (which holds the defaults), strictly.
func LoadFile(path string, dst any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", ErrConfig, path, err)
	}
	return DecodeYAML(b, path, dst)
}

// DecodeYAML decodes b into dst, rejecting unknown keys.
func DecodeYAML(b []byte, name string, dst any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, ioEOF) {
			return nil // an empty file keeps the defaults
		}
		// yaml's messages span lines ("unmarshal errors:\n  line 2: …");
		// a config error is one line.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
		return fmt.Errorf("%w: %s: %s (egate admin config keys lists the known keys)", ErrConfig, name, msg)
	}
	return nil
}

// leaf is one settable key: its dotted path and the field.
type leaf struct {
	path string
	v    reflect.Value
}

func leaves(v reflect.Value, prefix string, out *[]leaf) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		p := tag
		if prefix != "" {
			p = prefix + "." + tag
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Duration(0)) {
			leaves(fv, p, out)
			continue
		}
		*out = append(*out, leaf{p, fv})
	}
}

// Keys lists every settable key of cfg (a pointer to a struct).
func Keys(cfg any) []string {
	var ls []leaf
	leaves(reflect.ValueOf(cfg).Elem(), "", &ls)
	ks := make([]string, len(ls))
	for i, l := range ls {
		ks[i] = l.path
	}
	return ks
}

// EnvName is the environment variable for a dotted key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// ApplyEnv sets keys from environ (os.Environ() form). A variable whose name
// starts with the prefix of a known section but names no key is an error.
func ApplyEnv(cfg any, environ []string) error {
	var ls []leaf
	leaves(reflect.ValueOf(cfg).Elem(), "", &ls)
	byEnv := map[string]leaf{}
	sections := map[string]bool{}
	for _, l := range ls {
		byEnv[EnvName(l.path)] = l
		if i := strings.IndexByte(l.path, '.'); i > 0 {
			sections[EnvName(l.path[:i])+"_"] = true
		}
	}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if l, ok := byEnv[name]; ok {
			if err := setValue(l.v, val); err != nil {
				return fmt.Errorf("%w: %s (%s): %w", ErrConfig, name, l.path, err)
			}
			continue
		}
		for s := range sections {
			if strings.HasPrefix(name, s) {
				return fmt.Errorf("%w: environment variable %s names no config key; known keys of that section: %s", ErrConfig, name, strings.Join(sectionKeys(ls, s), ", "))
			}
		}
	}
	return nil
}

func sectionKeys(ls []leaf, envSection string) []string {
	var ks []string
	for _, l := range ls {
		if strings.HasPrefix(EnvName(l.path), envSection) {
			ks = append(ks, EnvName(l.path))
		}
	}
	sort.Strings(ks)
	return ks
}

// ApplySets applies key=value pairs (from --set flags).
func ApplySets(cfg any, sets []string) error {
	var ls []leaf
	leaves(reflect.ValueOf(cfg).Elem(), "", &ls)
	byKey := map[string]leaf{}
	for _, l := range ls {
		byKey[l.path] = l
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("%w: --set %q: write it as key=value, e.g. --set database.driver=postgres", ErrConfig, s)
		}
		l, ok := byKey[strings.TrimSpace(k)]
		if !ok {
			return fmt.Errorf("%w: --set %s: unknown key (see `egate admin config print`)", ErrConfig, k)
		}
		if err := setValue(l.v, v); err != nil {
			return fmt.Errorf("%w: --set %s: %w", ErrConfig, k, err)
		}
	}
	return nil
}

func setValue(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration like 30s or 5m: %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not true or false: %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a non-negative integer: %q", s)
		}
		v.SetUint(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("this key is set in the config file only")
		}
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("this key is set in the config file only")
	}
	return nil
}
