// Command urumi-helm-resident runs helm's install, upgrade, rollback, uninstall and history
// in one long-lived process, for urumi-core's HelmCli in resident mode
// (HelmCliBuilder::resident). It saves what a helm process pays on every call: starting
// (registering every Kubernetes type), reading the kubeconfig and discovering the API.
//
//	urumi (HelmCli, resident) ── one JSON line per call ──▶ stdin
//	   {"id":7,"args":["upgrade","--install","shop1","/charts/x","--values","/tmp/v.json",…,"--namespace","store-shop1"]}
//	   {"id":7,"cancel":true}        (the caller's deadline passed: like SIGTERM to helm)
//	stdout ◀── one JSON line per answer, in any order ──
//	   {"id":7,"code":0,"stdout":"{…release…}","stderr":""}
//
// The arguments are the ones helm's CLI takes, for the subset urumi uses; the answers
// are what helm would print: the same JSON on stdout, "Error: …" on stderr, exit code 1
// on failure. The work is done by helm's own library (helm.sh/helm/v3/pkg/action), so the
// release records, locks and `pending-*` states are helm's: `helm list`, `history` and
// `rollback` keep working on what this process made. Each call runs in its own goroutine.
// When stdin closes (its owner exited or was killed) or on SIGTERM, every call in flight is
// cancelled (helm records a cancelled install or upgrade as failed) and the process exits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage/driver"
	helmtime "helm.sh/helm/v3/pkg/time"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

type request struct {
	ID     uint64   `json:"id"`
	Args   []string `json:"args,omitempty"`
	Cancel bool     `json:"cancel,omitempty"`
}

type response struct {
	ID     uint64 `json:"id"`
	Code   int    `json:"code"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// How long calls in flight get to record their release as failed once cancelled at exit.
const exitGrace = 10 * time.Second

// How long what discovery found is reused: the cluster's capabilities (its version and API
// versions, .Capabilities in templates) and the REST mapping of kinds to resources. helm's
// CLI discovers them anew in each process, and helm's library reads its disk cache and
// decodes it again for every object it builds; together they were most of the resident's
// CPU per store. An API added to the cluster (a CRD) is seen within this time.
const discoveryTTL = 30 * time.Second

type server struct {
	settings *cli.EnvSettings

	mu       sync.Mutex
	inFlight map[uint64]context.CancelFunc
	wg       sync.WaitGroup

	outMu sync.Mutex
	out   *json.Encoder

	discoveryMu sync.Mutex
	getter      *cachedGetter
	caps        *chartutil.Capabilities
	discovered  time.Time
}

// cachedGetter is helm's RESTClientGetter with discovery and the REST mapper kept in memory,
// shared by every call, instead of read from the disk cache and decoded for each object.
type cachedGetter struct {
	genericclioptions.RESTClientGetter
	discovery discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
	expander  meta.RESTMapper
}

func (g *cachedGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *cachedGetter) ToRESTMapper() (meta.RESTMapper, error) {
	return g.expander, nil
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "the kubeconfig file (helm's lookup otherwise)")
	kubeContext := flag.String("kube-context", "", "the kubeconfig context")
	flag.Parse()

	settings := cli.New()
	if *kubeconfig != "" {
		settings.KubeConfig = *kubeconfig
	}
	if *kubeContext != "" {
		settings.KubeContext = *kubeContext
	}
	// The API server's warnings would go to this process's stderr, which nobody reads.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	s := &server{
		settings: settings,
		inFlight: map[uint64]context.CancelFunc{},
		out:      json.NewEncoder(os.Stdout),
	}

	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	inputClosed := make(chan struct{})
	go func() {
		s.serve(os.Stdin)
		close(inputClosed)
	}()
	select {
	case <-stop:
	case <-inputClosed:
	}
	s.cancelAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(exitGrace):
	}
}

func (s *server) serve(in io.Reader) {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for scanner.Scan() {
		var req request
		if err := json.Unmarshal(scanner.Bytes(), &req); err != nil {
			fmt.Fprintf(os.Stderr, "urumi-helm-resident: an unreadable request: %v\n", err)
			continue
		}
		if req.Cancel {
			s.mu.Lock()
			if cancel, ok := s.inFlight[req.ID]; ok {
				cancel()
			}
			s.mu.Unlock()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.mu.Lock()
		s.inFlight[req.ID] = cancel
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			stdout, err := s.run(ctx, req.Args)
			s.mu.Lock()
			delete(s.inFlight, req.ID)
			s.mu.Unlock()
			cancel()
			resp := response{ID: req.ID, Stdout: stdout}
			if err != nil {
				resp.Code = 1
				resp.Stderr = "Error: " + err.Error() + "\n"
			}
			s.outMu.Lock()
			defer s.outMu.Unlock()
			if err := s.out.Encode(resp); err != nil {
				fmt.Fprintf(os.Stderr, "urumi-helm-resident: writing an answer: %v\n", err)
			}
		}()
	}
}

func (s *server) cancelAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cancel := range s.inFlight {
		cancel()
	}
}

// flags are the options of every supported command; each command reads its own.
type flags struct {
	namespace      string
	install        bool
	valueFiles     []string
	resetValues    bool
	output         string
	timeout        time.Duration
	historyMax     int
	description    string
	noOpenAPI      bool
	ignoreNotFound bool
	wait           bool
	cascade        string
	max            int
}

func parse(command string, args []string) (*flags, []string, error) {
	f := &flags{}
	fs := pflag.NewFlagSet(command, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVarP(&f.namespace, "namespace", "n", "", "")
	fs.DurationVar(&f.timeout, "timeout", 300*time.Second, "")
	switch command {
	case "upgrade":
		fs.BoolVarP(&f.install, "install", "i", false, "")
		fs.StringArrayVarP(&f.valueFiles, "values", "f", nil, "")
		fs.BoolVar(&f.resetValues, "reset-values", false, "")
		fs.StringVarP(&f.output, "output", "o", "table", "")
		fs.IntVar(&f.historyMax, "history-max", 10, "")
		fs.StringVar(&f.description, "description", "", "")
		fs.BoolVar(&f.noOpenAPI, "disable-openapi-validation", false, "")
	case "uninstall":
		fs.BoolVar(&f.ignoreNotFound, "ignore-not-found", false, "")
		fs.BoolVar(&f.wait, "wait", false, "")
		fs.StringVar(&f.cascade, "cascade", "background", "")
	case "rollback":
		fs.IntVar(&f.historyMax, "history-max", 10, "")
	case "history":
		fs.StringVarP(&f.output, "output", "o", "table", "")
		fs.IntVar(&f.max, "max", 256, "")
	default:
		return nil, nil, fmt.Errorf("unknown command %q for \"urumi-helm-resident\"", command)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if f.namespace == "" {
		f.namespace = "default"
	}
	return f, fs.Args(), nil
}

// configuration is helm's action configuration for one call in one namespace, over the
// shared getter: discovery and the REST mapping are done once per discoveryTTL.
func (s *server) configuration(namespace string) (*action.Configuration, error) {
	getter, caps, err := s.discover()
	if err != nil {
		return nil, err
	}
	cfg := new(action.Configuration)
	quiet := func(string, ...interface{}) {}
	if err := cfg.Init(getter, namespace, os.Getenv("HELM_DRIVER"), quiet); err != nil {
		return nil, err
	}
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		kc.Namespace = namespace
	}
	cfg.Capabilities = caps
	return cfg, nil
}

// discover returns the shared getter and the cluster's capabilities, as helm's
// action.Configuration discovers them (version and API versions), done again when older
// than discoveryTTL.
func (s *server) discover() (*cachedGetter, *chartutil.Capabilities, error) {
	s.discoveryMu.Lock()
	defer s.discoveryMu.Unlock()
	if s.getter != nil && time.Since(s.discovered) < discoveryTTL {
		return s.getter, s.caps, nil
	}
	if s.getter == nil {
		base := s.settings.RESTClientGetter()
		config, err := base.ToRESTConfig()
		if err != nil {
			return nil, nil, err
		}
		client, err := discovery.NewDiscoveryClientForConfig(config)
		if err != nil {
			return nil, nil, fmt.Errorf("could not get Kubernetes discovery client: %w", err)
		}
		dc := memory.NewMemCacheClient(client)
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(dc)
		s.getter = &cachedGetter{
			RESTClientGetter: base,
			discovery:        dc,
			mapper:           mapper,
			expander:         restmapper.NewShortcutExpander(mapper, dc, func(string) {}),
		}
	}
	dc := s.getter.discovery
	dc.Invalidate()
	s.getter.mapper.Reset()
	kubeVersion, err := dc.ServerVersion()
	if err != nil {
		return nil, nil, fmt.Errorf("could not get server version from Kubernetes: %w", err)
	}
	apiVersions, err := action.GetVersionSet(dc)
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, nil, fmt.Errorf("could not get apiVersions from Kubernetes: %w", err)
	}
	s.caps = &chartutil.Capabilities{
		APIVersions: apiVersions,
		KubeVersion: chartutil.KubeVersion{
			Version: kubeVersion.GitVersion,
			Major:   kubeVersion.Major,
			Minor:   kubeVersion.Minor,
		},
		HelmVersion: chartutil.DefaultCapabilities.HelmVersion,
	}
	s.discovered = time.Now()
	return s.getter, s.caps, nil
}

func (s *server) run(ctx context.Context, argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("no command")
	}
	f, args, err := parse(argv[0], argv[1:])
	if err != nil {
		return "", err
	}
	cfg, err := s.configuration(f.namespace)
	if err != nil {
		return "", err
	}
	switch argv[0] {
	case "upgrade":
		return s.upgrade(ctx, cfg, f, args)
	case "uninstall":
		return uninstall(cfg, f, args)
	case "rollback":
		return rollback(cfg, f, args)
	default:
		return history(cfg, f, args)
	}
}

func exactArgs(args []string, n int, command string) error {
	if len(args) != n {
		return fmt.Errorf("%q requires %d arguments, received %d", command, n, len(args))
	}
	return nil
}

// upgrade is `helm upgrade --install`: an install when the release does not exist (or was
// uninstalled with its history kept), an upgrade otherwise.
func (s *server) upgrade(ctx context.Context, cfg *action.Configuration, f *flags, args []string) (string, error) {
	if err := exactArgs(args, 2, "helm upgrade"); err != nil {
		return "", err
	}
	name, chartPath := args[0], args[1]
	vals, err := (&values.Options{ValueFiles: f.valueFiles}).MergeValues(getter.Providers{})
	if err != nil {
		return "", err
	}
	if f.install {
		histClient := action.NewHistory(cfg)
		histClient.Max = 1
		versions, err := histClient.Run(name)
		uninstalled := len(versions) > 0 && versions[len(versions)-1].Info.Status == release.StatusUninstalled
		if errors.Is(err, driver.ErrReleaseNotFound) || uninstalled {
			ch, err := loadChart(chartPath)
			if err != nil {
				return "", fmt.Errorf("INSTALLATION FAILED: %w", err)
			}
			install := action.NewInstall(cfg)
			install.ReleaseName = name
			install.Namespace = f.namespace
			install.Timeout = f.timeout
			install.Description = f.description
			install.DisableOpenAPIValidation = f.noOpenAPI
			install.Replace = uninstalled
			rel, err := install.RunWithContext(ctx, ch, vals)
			if err != nil {
				return "", fmt.Errorf("INSTALLATION FAILED: %w", err)
			}
			return printRelease(rel, f.output)
		} else if err != nil {
			return "", err
		}
	}
	ch, err := loadChart(chartPath)
	if err != nil {
		return "", err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = f.namespace
	up.Timeout = f.timeout
	up.ResetValues = f.resetValues
	up.MaxHistory = f.historyMax
	up.Description = f.description
	up.DisableOpenAPIValidation = f.noOpenAPI
	rel, err := up.RunWithContext(ctx, name, ch, vals)
	if err != nil {
		return "", fmt.Errorf("UPGRADE FAILED: %w", err)
	}
	return printRelease(rel, f.output)
}

func loadChart(path string) (*chart.Chart, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("path %q not found", path)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, err
	}
	switch ch.Metadata.Type {
	case "", "application":
	default:
		return nil, fmt.Errorf("%s charts are not installable", ch.Metadata.Type)
	}
	if req := ch.Metadata.Dependencies; req != nil {
		if err := action.CheckDependencies(ch, req); err != nil {
			return nil, fmt.Errorf("An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: %w", err)
		}
	}
	return ch, nil
}

// printRelease prints the release as `helm upgrade -o json` does, without what urumi does
// not read and would only copy through the pipe: the values, the manifest, the hooks, the
// notes and the chart's files (the record helm stores keeps them all).
func printRelease(rel *release.Release, output string) (string, error) {
	if output != "json" {
		return fmt.Sprintf("Release %q has been deployed.\n", rel.Name), nil
	}
	trimmed := &release.Release{
		Name:      rel.Name,
		Namespace: rel.Namespace,
		Version:   rel.Version,
		Labels:    rel.Labels,
	}
	if rel.Info != nil {
		info := *rel.Info
		info.Notes = ""
		trimmed.Info = &info
	}
	if rel.Chart != nil {
		trimmed.Chart = &chart.Chart{Metadata: rel.Chart.Metadata}
	}
	b, err := json.Marshal(trimmed)
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

func uninstall(cfg *action.Configuration, f *flags, args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("\"helm uninstall\" requires at least 1 argument")
	}
	out := ""
	for _, name := range args {
		client := action.NewUninstall(cfg)
		client.IgnoreNotFound = f.ignoreNotFound
		client.Timeout = f.timeout
		client.Wait = f.wait
		client.DeletionPropagation = f.cascade
		res, err := client.Run(name)
		if err != nil {
			return "", err
		}
		if res != nil && res.Info != "" {
			out += res.Info + "\n"
		}
		out += fmt.Sprintf("release \"%s\" uninstalled\n", name)
	}
	return out, nil
}

func rollback(cfg *action.Configuration, f *flags, args []string) (string, error) {
	if len(args) < 1 || len(args) > 2 {
		return "", errors.New("\"helm rollback\" requires 1 or 2 arguments")
	}
	client := action.NewRollback(cfg)
	client.Timeout = f.timeout
	client.MaxHistory = f.historyMax
	if len(args) == 2 {
		var version int
		if _, err := fmt.Sscanf(args[1], "%d", &version); err != nil {
			return "", fmt.Errorf("could not convert revision to a number: %v", err)
		}
		client.Version = version
	}
	if err := client.Run(args[0]); err != nil {
		return "", err
	}
	return "Rollback was a success! Happy Helming!\n", nil
}

type releaseInfo struct {
	Revision    int           `json:"revision"`
	Updated     helmtime.Time `json:"updated"`
	Status      string        `json:"status"`
	Chart       string        `json:"chart"`
	AppVersion  string        `json:"app_version"`
	Description string        `json:"description"`
}

// history prints what `helm history -o json` prints: the last `max` revisions, oldest first.
func history(cfg *action.Configuration, f *flags, args []string) (string, error) {
	if err := exactArgs(args, 1, "helm history"); err != nil {
		return "", err
	}
	client := action.NewHistory(cfg)
	client.Max = f.max
	hist, err := client.Run(args[0])
	if err != nil {
		return "", err
	}
	releaseutil.Reverse(hist, releaseutil.SortByRevision)
	if len(hist) > client.Max {
		hist = hist[:client.Max]
	}
	infos := []releaseInfo{}
	for i := len(hist) - 1; i >= 0; i-- {
		r := hist[i]
		info := releaseInfo{
			Revision:    r.Version,
			Status:      r.Info.Status.String(),
			Chart:       "MISSING",
			AppVersion:  "MISSING",
			Description: r.Info.Description,
		}
		if r.Chart != nil && r.Chart.Metadata != nil {
			info.Chart = fmt.Sprintf("%s-%s", r.Chart.Name(), r.Chart.Metadata.Version)
			info.AppVersion = r.Chart.AppVersion()
		}
		if !r.Info.LastDeployed.IsZero() {
			info.Updated = r.Info.LastDeployed
		}
		infos = append(infos, info)
	}
	b, err := json.Marshal(infos)
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}
