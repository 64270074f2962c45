package config

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// SourceGcloud marks a value read from gcloud's active configuration, the
// last fallback for the project as in kube-up's detect-project.
const SourceGcloud = "gcloud"

// gcloudProject reads `project` from the [core] section of gcloud's active
// configuration: the files gcloud itself uses, in the directory
// CLOUDSDK_CONFIG names (default ~/.config/gcloud), the configuration
// CLOUDSDK_ACTIVE_CONFIG_NAME or the active_config file names (default
// "default"). It returns the file it read, for the origin.
func gcloudProject() (project, path string, ok bool) {
	dir := os.Getenv("CLOUDSDK_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "", false
		}
		dir = filepath.Join(home, ".config", "gcloud")
	}
	name := os.Getenv("CLOUDSDK_ACTIVE_CONFIG_NAME")
	if name == "" {
		if b, err := os.ReadFile(filepath.Join(dir, "active_config")); err == nil {
			name = strings.TrimSpace(string(b))
		}
	}
	if name == "" {
		name = "default"
	}
	path = filepath.Join(dir, "configurations", "config_"+name)
	f, err := os.Open(path)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
		case section == "core":
			k, v, found := strings.Cut(line, "=")
			if !found {
				k, v, found = strings.Cut(line, ":")
			}
			if found && strings.TrimSpace(k) == "project" {
				if v = strings.TrimSpace(v); v != "" {
					return v, path, true
				}
			}
		}
	}
	return "", "", false
}
