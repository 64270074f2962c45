package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/hakube/hakube/internal/cluster"
	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/etcdm"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/kube"
)

type streams struct {
	in       io.Reader
	out, err io.Writer
}

// isTTY reports whether w is a terminal (progress displays and prompts only
// appear there).
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	streams    streams
	configFile string
	output     string
	logFormat  string
	verbose    int
	log        *zap.Logger
}

func newRootCmd(s streams) *cobra.Command {
	g := &globalOptions{streams: s}
	root := &cobra.Command{
		Use:   "hakube",
		Short: "Highly available Kubernetes clusters on Google Compute Engine, the kube-up way",
		Long: `hakube creates, grows, shrinks and tears down highly available Kubernetes
clusters on Google Compute Engine: master replicas in several zones of a region,
a node pool per zone, and a load balancer in front of the masters.

It honours kube-up.sh's environment variables (KUBE_GCE_ZONE, NUM_NODES,
KUBE_REPLICATE_EXISTING_MASTER, KUBE_USE_EXISTING_MASTER, KUBE_DELETE_NODES, ...),
so existing CI scripts keep working. Precedence: flag > environment > config
file (--config, HAKUBE_CONFIG) > default.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch g.output {
			case "text", "json", "yaml":
			default:
				return &usageError{fmt.Errorf("-o/--output must be text, json or yaml, got %q", g.output)}
			}
			log, err := newLogger(g.logFormat, g.verbose, s.err)
			if err != nil {
				return &usageError{err}
			}
			g.log = log
			return nil
		},
	}
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetIn(s.in)
	root.SetFlagErrorFunc(flagError)
	root.SetUsageFunc(usage)
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for \"hakube\"", args[0])
		cmd.SuggestionsMinimumDistance = 2
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return &usageError{fmt.Errorf("%s (hakube --help lists the commands)", msg)}
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "config file (YAML; env HAKUBE_CONFIG)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format of data on stdout: text, json or yaml")
	pf.StringVar(&g.logFormat, "log-format", "text", "stderr format: text (human progress) or json (structured zap logs)")
	pf.CountVarP(&g.verbose, "verbose", "v", "more detail in logs (-v, -vv)")
	markGroup(pf, groupOutput, "config", "output", "log-format", "verbose")
	defer registerCompletions(root, g)
	root.AddCommand(
		newUpCmd(g),
		newDownCmd(g),
		newStatusCmd(g),
		newValidateCmd(g),
		newKubeconfigCmd(g),
		newConfigCmd(g),
		newVersionCmd(g),
	)
	return root
}

// noArgs refuses positional arguments as a usage error: every input is a
// flag, an environment variable or a config file key.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("hakube %s takes no arguments, got %q: settings are flags, environment variables or config file keys (see hakube %s --help)",
			cmd.Name(), strings.Join(args, " "), cmd.Name())}
	}
	return nil
}

// flagError makes pflag's errors usage errors, and explains a flag that
// belongs to another command (--replicate-master on down).
func flagError(cmd *cobra.Command, err error) error {
	if name, ok := strings.CutPrefix(err.Error(), "unknown flag: --"); ok {
		if hint := config.FlagHint(name); hint != "" {
			return &usageError{fmt.Errorf("hakube %s does not take --%s: %s", cmd.Name(), name, hint)}
		}
	}
	return &usageError{err}
}

// newLogger builds the zap logger: quiet human text by default, JSON on
// request; -v lowers the level.
func newLogger(format string, verbose int, w io.Writer) (*zap.Logger, error) {
	level := zapcore.WarnLevel
	switch {
	case verbose == 1:
		level = zapcore.InfoLevel
	case verbose >= 2:
		level = zapcore.DebugLevel
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		if verbose == 0 {
			level = zapcore.InfoLevel
		}
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	case "text":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.TimeKey = ""
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}

// warn tells the user something that did not stop the command: a line on
// stderr, or a zap event with --log-format json.
func (g *globalOptions) warn(msg string) {
	if g.logFormat == "json" && g.log != nil {
		g.log.Warn(msg)
		return
	}
	fmt.Fprintln(g.streams.err, "Warning:", msg)
}

// loadConfig reads settings for a command from flags, environment and file.
func (g *globalOptions) loadConfig(cmd *cobra.Command, command string) (*config.Config, error) {
	return config.Load(config.LoadOptions{
		Flags:      cmd.Flags(),
		ConfigFile: g.configFile,
		Command:    command,
		Warn:       g.warn,
	})
}

// newCloud connects to GCE (or the emulator the endpoint names).
func (g *globalOptions) newCloud(ctx context.Context, cfg *config.Config) (*gce.Cloud, error) {
	return gce.New(ctx, gce.Options{Project: cfg.Project, Endpoint: cfg.Endpoint, Logger: g.log.Named("gce")})
}

// newEnv assembles what a command runs with: the cloud, the SSH key the
// masters' etcd is reached with, and the kubeconfig kubectl reads.
func (g *globalOptions) newEnv(cfg *config.Config, cloud *gce.Cloud, progress func(step, msg string)) (*cluster.Env, error) {
	env := &cluster.Env{Cloud: cloud, Log: g.log, Progress: progress}
	env.SSH.Port = cfg.SSHPort
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, fmt.Errorf("home directory (for the SSH key and kubeconfig): %w", err)
	}
	conf, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("config directory (for hakube's SSH key): %w", err)
	}
	key, err := etcdm.LoadKey(home, filepath.Join(conf, "hakube"))
	if err != nil {
		return nil, err
	}
	env.SSH.Signer = key.Signer
	env.KnownHosts = filepath.Join(conf, "hakube", "ssh", "known_hosts")
	if env.Kubeconfig, err = kube.KubeconfigPath(); err != nil {
		return nil, err
	}
	return env, nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}
