package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/portwarden/portwarden/watcher"
)

// Source says where Load reads the configuration from, lowest precedence
// first: the defaults, the file, PORTWARDEN_* variables, then flags.
type Source struct {
	Path  string         // the config file; "" for DefaultPath, which may be missing
	Flags *pflag.FlagSet // flags named in FlagKeys that were set override their keys
}

// defaultPath is DefaultPath, but for tests.
var defaultPath = DefaultPath

// FlagKeys maps the command-line flags that override config keys to those
// keys.
var FlagKeys = map[string]string{
	"mode":        "mode",
	"docker-host": "docker.host",
	"log-level":   "log.level",
	"log-format":  "log.format",
}

// Load reads, decodes and validates the configuration. It returns the
// defaults only when no file is named and none is at DefaultPath; a file
// that exists but cannot be read or parsed is an error, as is any invalid
// value. Errors name the file and the key.
func Load(src Source) (Config, string, error) {
	path, explicit := src.Path, src.Path != ""
	if !explicit {
		path = defaultPath
	}
	v := viper.New()
	v.SetConfigType("yaml")

	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, path, fmt.Errorf("config file %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		path = "" // no file: defaults, environment and flags only
	default:
		return Config{}, path, fmt.Errorf("reading config file: %w", err)
	}

	for _, key := range leafKeys(reflect.TypeFor[Config](), "") {
		if err := v.BindEnv(key, envName(key)); err != nil {
			return Config{}, path, fmt.Errorf("binding %s: %w", envName(key), err)
		}
	}
	if err := bindFlags(v, src.Flags); err != nil {
		return Config{}, path, err
	}

	cfg := Default()
	var problems []string
	if err := decode(v.AllSettings(), &cfg); err != nil {
		var cerr *Error
		if !errors.As(err, &cerr) {
			return Config{}, path, inFile(path, err)
		}
		problems = cerr.Problems
	}
	cfg.Docker = dockerFromEnv(cfg.Docker)
	var verr *Error
	if errors.As(cfg.Validate(), &verr) {
		problems = append(problems, verr.Problems...)
	}
	if len(problems) > 0 {
		return Config{}, path, inFile(path, &Error{Problems: problems})
	}
	return cfg, path, nil
}

// PermissionWarning says, when the config file at path is readable by
// anyone, that it should not be: it may hold a webhook URL or a token.
// It returns "" when all is well or there is no file.
func PermissionWarning(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return ""
	}
	return fmt.Sprintf("config file %s is readable by anyone (mode %04o); it may hold "+
		"secrets: chmod o-r it", path, fi.Mode().Perm())
}

// inFile says which file an error is about, or that it came from the
// defaults, environment and flags alone.
func inFile(path string, err error) error {
	if path == "" {
		return fmt.Errorf("config (no file): %w", err)
	}
	return fmt.Errorf("config file %s: %w", path, err)
}

func envName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func bindFlags(v *viper.Viper, flags *pflag.FlagSet) error {
	if flags == nil {
		return nil
	}
	var err error
	flags.Visit(func(f *pflag.Flag) {
		if key, ok := FlagKeys[f.Name]; ok && err == nil {
			err = v.BindPFlag(key, f)
		}
	})
	return err
}

// dockerFromEnv fills the engine keys left empty from the variables the
// docker command reads, and the host from the engine's default socket.
func dockerFromEnv(d Docker) Docker {
	if d.Host == "" {
		d.Host = os.Getenv("DOCKER_HOST")
	}
	if d.Host == "" {
		d.Host = watcher.DefaultHost
	}
	if !d.TLSVerify && os.Getenv("DOCKER_TLS_VERIFY") != "" {
		d.TLSVerify = true
	}
	if d.CertPath == "" {
		d.CertPath = os.Getenv("DOCKER_CERT_PATH")
	}
	if d.CertPath == "" && d.TLSVerify {
		if home, err := os.UserHomeDir(); err == nil {
			d.CertPath = home + "/.docker"
		}
	}
	return d
}

// leafKeys returns the key paths of the scalar fields of t, the ones an
// environment variable can set. Lists of entries and maps are left out.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		key := prefix + f.Tag.Get("mapstructure")
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			keys = append(keys, leafKeys(f.Type, key+".")...)
		case f.Type.Kind() == reflect.Slice || f.Type.Kind() == reflect.Map:
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

var durationType = reflect.TypeFor[time.Duration]()

// decode copies settings onto cfg strictly: an unknown key, or a value of
// the wrong type, is an error. Strings are read as numbers, booleans and
// durations, since that is all an environment variable can hold.
func decode(settings map[string]any, cfg *Config) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      cfg,
		TagName:     "mapstructure",
		ErrorUnused: true,
		DecodeHook:  strictScalars,
	})
	if err != nil {
		return err
	}
	if err := d.Decode(settings); err != nil {
		return &Error{Problems: decodeProblems(err)}
	}
	return nil
}

// typeError is what strictScalars returns for a value it refuses.
type typeError struct {
	value any
	want  string
}

// Error says what the value is and what the key wants.
func (e *typeError) Error() string {
	return fmt.Sprintf("%s: want %s", quote(e.value), e.want)
}

func strictScalars(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to == durationType {
		return toDuration(data)
	}
	switch to.Kind() {
	case reflect.Bool:
		if s, ok := data.(string); ok {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return nil, &typeError{data, "true or false"}
			}
			return b, nil
		}
		if _, ok := data.(bool); !ok {
			return nil, &typeError{data, "true or false"}
		}
	case reflect.Int:
		return toInt(data)
	case reflect.String:
		if _, ok := data.(string); !ok {
			return nil, &typeError{data, "a string"}
		}
	case reflect.Slice:
		if _, ok := data.([]any); !ok && data != nil {
			return nil, &typeError{data, "a list"}
		}
	case reflect.Map, reflect.Struct:
		if _, ok := data.(map[string]any); !ok && data != nil {
			return nil, &typeError{data, "a mapping of keys to values"}
		}
	}
	return data, nil
}

func toDuration(data any) (any, error) {
	s, ok := data.(string)
	if !ok {
		if d, ok := data.(time.Duration); ok {
			return d, nil
		}
		return nil, &typeError{data, `a duration with a unit, such as "30s" or "10m"`}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, &typeError{data, `a duration with a unit, such as "30s" or "10m"`}
	}
	return d, nil
}

func toInt(data any) (any, error) {
	switch n := data.(type) {
	case int:
		return n, nil
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < math.MaxInt32 {
			return int(n), nil
		}
	case string:
		if i, err := strconv.Atoi(strings.TrimSpace(n)); err == nil {
			return i, nil
		}
	}
	return nil, &typeError{data, "a whole number"}
}

// decodeProblems turns mapstructure's error, a tree of joined and wrapped
// errors, into one line per key.
func decodeProblems(err error) []string {
	var de *mapstructure.DecodeError
	switch e := err.(type) { //nolint:errorlint // it walks the tree of errors, level by level
	case interface{ Unwrap() []error }:
		var out []string
		for _, inner := range e.Unwrap() {
			out = append(out, decodeProblems(inner)...)
		}
		return out
	case *mapstructure.DecodeError:
		de = e
	default:
		if inner := errors.Unwrap(err); inner != nil {
			return decodeProblems(inner)
		}
		return []string{err.Error()}
	}

	name, inner := de.Name(), de.Unwrap()
	if name == rootName {
		name = ""
	}
	if _, ok := inner.(interface{ Unwrap() []error }); ok {
		return decodeProblems(inner)
	}
	msg := inner.Error()
	if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
		var out []string
		for _, k := range strings.Split(keys, ", ") {
			out = append(out, joinKey(name, k)+": unknown key")
		}
		return out
	}
	return []string{name + ": " + msg}
}

// rootName is what mapstructure calls the top of the config in errors.
var rootName = reflect.TypeFor[Config]().String()

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// quote shows a value as it appears in an error message: strings quoted,
// anything else in Go syntax.
func quote(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%v", v)
}
