package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// registryDefaultConfig is Debian's config of docker-registry; the test
// changes only its paths (storage and the htpasswd file) to its own.
const registryDefaultConfig = "/etc/docker/registry/config.yml"

// registryLayerSize is the size of the layer pushed and fetched.
const registryLayerSize = 2 << 20

// registryParallel: a layer fetched that many times by one curl, 10 at once.
const registryParallel = 20

var (
	// The registry provisions an htpasswd file with a random password
	// for user docker, and logs it, when the file is missing.
	registryPassword = regexp.MustCompile(`password=(\S+) user=docker`)
	locationHeader   = regexp.MustCompile(`(?mi)^location: (\S+)`)
)

// registryConfig writes Debian's config with the test's paths and returns
// its path.
func registryConfig(t *testing.T) string {
	b, err := os.ReadFile(registryDefaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := string(b)
	for from, to := range map[string]string{
		"rootdirectory: /var/lib/docker-registry": "rootdirectory: " + filepath.Join(dir, "data"),
		"path: /etc/docker/registry":              "path: " + filepath.Join(dir, "htpasswd"),
	} {
		if !strings.Contains(config, from) {
			t.Fatalf("%s has no %q", registryDefaultConfig, from)
		}
		config = strings.Replace(config, from, to, 1)
	}
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// blob is content pushed to the registry and its digest.
type blob struct {
	data   []byte
	digest string
}

func newBlob(data []byte) blob {
	return blob{data, fmt.Sprintf("sha256:%x", sha256.Sum256(data))}
}

// runRegistry: docker-registry in h1-c1 under slim exec (supervised), curl
// in h2-c1 under slim exec pushing a layer, a config and a manifest, and
// fetching them back, the layer many times at once.
func runRegistry(t *testing.T, l *testLab) {
	registry := l.start("h1-c1", true, "docker-registry", "serve", registryConfig(t))
	registry.waitFor("listening on", 15*time.Second)
	m := registryPassword.FindStringSubmatch(registry.output())
	if m == nil {
		t.Fatalf("the registry logged no password for user docker:\n%s", tail(registry.output(), 10))
	}
	auth := "docker:" + m[1]
	addr := l.containerAddr("h1-c1")
	l.waitForDirectory("h2", addr, 5000, 10*time.Second)
	repo := "http://" + addr + ":5000/v2/slim/test"

	layerData := make([]byte, registryLayerSize)
	rand.Read(layerData)
	layer := newBlob(layerData)
	config := newBlob([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"%s"}]}`,
		len(config.data), config.digest, len(layer.data), layer.digest)

	before := l.vxlanBytes("h1")
	for _, b := range []blob{layer, config} {
		pushBlob(t, l, repo, auth, b)
	}
	pushManifest(t, l, repo, auth, manifest)
	fetchBack(t, l, repo, auth, layer, manifest)
	crossed := l.vxlanBytes("h1") - before
	t.Logf("push, fetch and %d parallel fetches of a %d-byte layer: %d bytes over VXLAN", registryParallel, registryLayerSize, crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed VXLAN between curl and the registry", crossed)
	}
	if !strings.Contains(registry.output(), `http.request.remoteaddr="`+l.containerAddr("h2-c1")+":") {
		t.Errorf("the registry did not see curl's overlay address:\n%s", tail(registry.output(), 5))
	}
	for _, node := range []string{"h2-c2", "h1-c2"} {
		out, err := l.curl(node, false, "-u", auth, repo+"/tags/list")
		wantOutput(t, "the registry from "+node+" without Slim", out, err, `"tags":["v1"]`)
	}
	l.stopService(registry, "h1-c1", 5000, true)
	checkSupervised(t, registry)
}

// pushBlob uploads b monolithically: POST for an upload URL, then one PUT
// with the content and its digest.
func pushBlob(t *testing.T, l *testLab, repo, auth string, b blob) {
	out, err := l.curl("h2-c1", true, "-u", auth, "-X", "POST", "-D", "-", "-o", "/dev/null", repo+"/blobs/uploads/")
	m := locationHeader.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("POST %s/blobs/uploads/: %v, no Location:\n%s", repo, err, out)
	}
	file := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(file, b.data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = l.curl("h2-c1", true, "-u", auth, "-X", "PUT", "-H", "Content-Type: application/octet-stream",
		"--data-binary", "@"+file, "-w", "status %{http_code}\n", m[1]+"&digest="+b.digest)
	wantOutput(t, "PUT of blob "+b.digest, out, err, "status 201")
}

// pushManifest tags the image v1.
func pushManifest(t *testing.T, l *testLab, repo, auth, manifest string) {
	out, err := l.curl("h2-c1", true, "-u", auth, "-X", "PUT",
		"-H", "Content-Type: application/vnd.docker.distribution.manifest.v2+json",
		"--data-binary", manifest, "-w", "status %{http_code}\n", repo+"/manifests/v1")
	wantOutput(t, "PUT of the manifest", out, err, "status 201")
}

// fetchBack fetches the manifest, then the layer registryParallel times
// in one curl, 10 transfers at once, and compares.
func fetchBack(t *testing.T, l *testLab, repo, auth string, layer blob, manifest string) {
	out, err := l.curl("h2-c1", true, "-u", auth, "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json", repo+"/manifests/v1")
	if err != nil || out != manifest {
		t.Errorf("GET of the manifest: %v, %q; want what was pushed", err, out)
	}
	dir := t.TempDir()
	args := []string{"-u", auth, "-Z", "--parallel-max", "10"}
	for i := 0; i < registryParallel; i++ {
		args = append(args, "-o", filepath.Join(dir, fmt.Sprint(i)), repo+"/blobs/"+layer.digest)
	}
	out, err = l.curl("h2-c1", true, args...)
	if err != nil {
		t.Fatalf("%d parallel fetches of the layer: %v\n%s", registryParallel, err, tail(out, 10))
	}
	for i := 0; i < registryParallel; i++ {
		got, _ := os.ReadFile(filepath.Join(dir, fmt.Sprint(i)))
		if newBlob(got).digest != layer.digest {
			t.Errorf("fetch %d of the layer: %d bytes, digest %s; want %s", i, len(got), newBlob(got).digest, layer.digest)
		}
	}
}
