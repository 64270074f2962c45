package kube

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig is the admin's entry for one cluster, named as kube-up names
// it: <project>_<prefix> for the context, its cluster and its user.
type Kubeconfig struct {
	Name   string
	Server string // https://<static IP>:<port>
	CA     []byte
	Cert   []byte
	Key    []byte
}

// KubeconfigPath is where kubectl reads: the first file of $KUBECONFIG,
// else ~/.kube/config.
func KubeconfigPath() (string, error) {
	if v := os.Getenv("KUBECONFIG"); v != "" {
		for _, p := range filepath.SplitList(v) {
			if p != "" {
				return p, nil
			}
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no $KUBECONFIG and no home directory: %w", err)
	}
	return filepath.Join(home, ".kube", "config"), nil
}

func (k Kubeconfig) config() *clientcmdapi.Config {
	c := clientcmdapi.NewConfig()
	k.into(c)
	c.CurrentContext = k.Name
	return c
}

func (k Kubeconfig) into(c *clientcmdapi.Config) {
	c.Clusters[k.Name] = &clientcmdapi.Cluster{Server: k.Server, CertificateAuthorityData: k.CA}
	c.AuthInfos[k.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: k.Cert, ClientKeyData: k.Key}
	c.Contexts[k.Name] = &clientcmdapi.Context{Cluster: k.Name, AuthInfo: k.Name}
}

// Render is the entry alone, as a kubeconfig file.
func (k Kubeconfig) Render() ([]byte, error) { return clientcmd.Write(*k.config()) }

// Merge adds (or replaces) the entry in the kubeconfig at path and makes it
// current, keeping every other context, cluster and user as they are. The
// file is created 0600 (in a 0700 directory) and stays 0600: it holds a
// private key.
func Merge(path string, k Kubeconfig) error {
	c, err := load(path)
	if err != nil {
		return err
	}
	k.into(c)
	c.CurrentContext = k.Name
	return write(path, c)
}

// Remove deletes the entry's context, cluster and user from the kubeconfig
// at path, and nothing else; a missing file or entry is fine. It reports
// whether anything was removed.
func Remove(path, name string) (bool, error) {
	c, err := load(path)
	if err != nil || c == nil {
		return false, err
	}
	_, hadCtx := c.Contexts[name]
	_, hadCluster := c.Clusters[name]
	_, hadUser := c.AuthInfos[name]
	if !hadCtx && !hadCluster && !hadUser {
		return false, nil
	}
	delete(c.Contexts, name)
	delete(c.Clusters, name)
	delete(c.AuthInfos, name)
	if c.CurrentContext == name {
		c.CurrentContext = ""
	}
	return true, write(path, c)
}

// Has reports whether the kubeconfig at path has the entry as given.
func Has(path string, k Kubeconfig) (bool, error) {
	c, err := load(path)
	if err != nil {
		return false, err
	}
	cl, ctx, u := c.Clusters[k.Name], c.Contexts[k.Name], c.AuthInfos[k.Name]
	return cl != nil && ctx != nil && u != nil && cl.Server == k.Server && string(cl.CertificateAuthorityData) == string(k.CA) &&
		ctx.Cluster == k.Name && ctx.AuthInfo == k.Name && len(u.ClientCertificateData) > 0, nil
}

// HasName reports whether the kubeconfig at path has any entry of the name.
func HasName(path, name string) bool {
	c, err := load(path)
	if err != nil {
		return false
	}
	return c.Contexts[name] != nil || c.Clusters[name] != nil || c.AuthInfos[name] != nil
}

func load(path string) (*clientcmdapi.Config, error) {
	c, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return clientcmdapi.NewConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	return c, nil
}

func write(path string, c *clientcmdapi.Config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kubeconfig directory: %w", err)
	}
	if err := clientcmd.WriteToFile(*c, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	// WriteToFile keeps an existing file's mode; ours holds a private key.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return nil
}
