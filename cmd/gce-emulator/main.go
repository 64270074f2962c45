// Command gce-emulator serves a local Google Compute Engine API. It prints its
// Compute endpoint as the first line on stdout so scripts can capture it:
//
//	endpoint=$(gce-emulator --project my-project | head -1)
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/hakube/hakube/internal/emulator"
)

type options struct {
	listen        string
	projects      []string
	latency       string
	timeScale     float64
	waitCap       time.Duration
	linkBase      string
	seed          uint64
	dataPlane     bool
	kubernetes    bool
	kubernetesSet bool // --kubernetes given explicitly
	kubeBinary    string
	stateDir      string
	sshPort       int
	externalRange string
	internalRange string
	logFormat     string
	verbose       bool
}

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gce-emulator:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:           "gce-emulator",
		Short:         "A local Google Compute Engine API for hakube, gcloud and the official Go client",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.kubernetesSet = cmd.Flags().Changed("kubernetes")
			return run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to serve on (port 0 picks a free port)")
	f.StringSliceVar(&o.projects, "project", []string{"hakube-demo"}, "project ids the emulator knows (repeat or comma-separate); others answer 403")
	f.StringVar(&o.latency, "latency", emulator.LatencyRealistic, "operation latency preset: realistic, fast or none")
	f.Float64Var(&o.timeScale, "time-scale", 1, "multiply every modelled duration (0.05 = twenty times faster)")
	f.DurationVar(&o.waitCap, "wait-cap", 2*time.Minute, "longest single operations.wait long poll")
	f.StringVar(&o.linkBase, "link-base", "self", `prefix of returned links: "self" (this server, so links resolve), "gce" (https://www.googleapis.com/compute/v1/ like real GCE) or a URL ending in /compute/v1/`)
	f.Uint64Var(&o.seed, "seed", 0, "seed for ids, names and latency draws (0: random)")
	f.BoolVar(&o.dataPlane, "dataplane", true, "serve the data plane: masters answer on their loopback IPs, forwarding rules forward")
	f.BoolVar(&o.kubernetes, "kubernetes", true, "masters run the real etcd and Kubernetes control plane from their metadata (false: static health endpoints only, enough for network tests); needs the data plane")
	f.StringVar(&o.kubeBinary, "kube-binary", "", "the rehearsal's Kubernetes binary (default: kube-rehearsal next to this executable, else ./bin/kube-rehearsal; `make rehearsal` builds it)")
	f.StringVar(&o.stateDir, "state-dir", "", "directory for the VMs' files: PKI, kubeconfigs, etcd data on their disks (default: a temporary directory removed at exit)")
	f.IntVar(&o.sshPort, "ssh-port", emulator.DefaultSSHPort, "port of every VM's SSH server, on its internal and external IPs")
	f.StringVar(&o.externalRange, "external-range", "127.64.0.0/10", "loopback range for external IPs")
	f.StringVar(&o.internalRange, "internal-range", "127.128.0.0/9", "loopback range for internal IPs (auto-mode subnets are carved from it)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format on stderr: text or json")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "debug logs")
	return cmd
}

func run(ctx context.Context, o *options) error {
	log, err := newLogger(o.logFormat, o.verbose)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	raiseFileLimit(log)
	ext, err := netip.ParsePrefix(o.externalRange)
	if err != nil {
		return fmt.Errorf("--external-range: %w", err)
	}
	internal, err := netip.ParsePrefix(o.internalRange)
	if err != nil {
		return fmt.Errorf("--internal-range: %w", err)
	}
	kube, err := o.guestOptions(internal)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	endpoint := "http://" + ln.Addr().String() + "/compute/v1/"
	linkBase := o.linkBase
	switch linkBase {
	case "self":
		linkBase = endpoint
	case "gce":
		linkBase = emulator.DefaultLinkBase
	}
	srv, err := emulator.New(emulator.Options{
		Projects:      o.projects,
		Latency:       o.latency,
		TimeScale:     o.timeScale,
		WaitCap:       o.waitCap,
		LinkBase:      linkBase,
		Seed:          o.seed,
		DataPlane:     o.dataPlane,
		Kubernetes:    kube.kubernetes,
		KubeBinary:    kube.binary,
		StateDir:      o.stateDir,
		SSHPort:       o.sshPort,
		ExternalRange: ext,
		InternalRange: internal,
		Logger:        log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Println(endpoint)
	log.Info("serving", zap.String("endpoint", endpoint), zap.Strings("projects", o.projects),
		zap.String("latency", o.latency), zap.Float64("timeScale", o.timeScale))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Close() // wakes long polls so Shutdown does not wait for them
	return hs.Shutdown(shutdownCtx)
}

func newLogger(format string, verbose bool) (*zap.Logger, error) {
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "text":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
	}
	cfg.OutputPaths = []string{"stderr"}
	if !verbose {
		cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	}
	return cfg.Build()
}
