package harness

import (
	"os"
	"strings"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
)

// GcloudEnv points gcloud at endpoint for project, with its configuration
// in configDir: no credentials, no prompts, no metadata-server probe.
func GcloudEnv(endpoint, project, configDir string) []string {
	return []string{"CLOUDSDK_CONFIG=" + configDir,
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=" + endpoint,
		"CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true", "CLOUDSDK_CORE_PROJECT=" + project,
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1", "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true", "CLOUDSDK_SURVEY_DISABLE_PROMPTS=true",
		// No metadata server to probe here, and nobody reads gcloud's logs.
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false", "CLOUDSDK_CORE_DISABLE_FILE_LOGGING=true"}
}

// CleanEnv is the environment without any variable hakube reads, nor the
// names in also, so that a program sets exactly the ones it shows.
func CleanEnv(also ...string) []string {
	drop := map[string]bool{}
	for _, k := range append(config.EnvironmentVariables(), also...) {
		drop[k] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}

// KubeTestArgs are kube-up's test variables the programs run hakube with:
// the controller-manager notices a halted master within seconds instead of
// 50 s and elects a new leader as fast (the rehearsal's measured flags);
// the kubelets renew their leases every 2 s, well inside that grace. They
// change no Compute call.
var KubeTestArgs = []string{
	"CONTROLLER_MANAGER_TEST_ARGS=" + kubevm.FastControllers,
	"SCHEDULER_TEST_ARGS=" + kubevm.FastScheduler,
	"KUBELET_TEST_ARGS=" + kubevm.FastKubelet,
}

// Indent prefixes every line of s, without a trailing empty line.
func Indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}
