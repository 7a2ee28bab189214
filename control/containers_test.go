package control

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeContainers records the container operations it is asked for.
type fakeContainers struct {
	mu      sync.Mutex
	added   []ContainerSpec
	deleted []string
}

func (f *fakeContainers) AddContainer(spec ContainerSpec) (ContainerSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if spec.Name == "taken" {
		return ContainerSpec{}, errors.New("container taken is registered already")
	}
	f.added = append(f.added, spec)
	return spec, nil
}

func (f *fakeContainers) DeleteContainer(name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, name)
	return 3, nil
}

func TestContainerOperations(t *testing.T) {
	handler := &fakeContainers{}
	path, _ := serveTest(t, &Server{Source: &fakeSource{}, Containers: handler})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := ContainerSpec{Name: "web", Netns: "/run/netns/web", Addr: "198.19.1.5", ContainerID: "abc", IfName: "eth0"}
	got, err := c.ContainerAdd(ctx, want)
	if err != nil || got != want {
		t.Errorf("ContainerAdd = %+v, %v; want %+v", got, err, want)
	}
	if _, err := c.ContainerAdd(ctx, ContainerSpec{Name: "taken", Netns: "/x", Addr: "198.19.1.6"}); err == nil || !strings.Contains(err.Error(), "registered already") {
		t.Errorf("refused ContainerAdd: %v", err)
	}
	if n, err := c.ContainerDel(ctx, "web"); err != nil || n != 3 {
		t.Errorf("ContainerDel = %d, %v", n, err)
	}
	if len(handler.added) != 1 || handler.added[0] != want || len(handler.deleted) != 1 || handler.deleted[0] != "web" {
		t.Errorf("handler saw %+v and %v", handler.added, handler.deleted)
	}
}

func TestContainerRequestsChecked(t *testing.T) {
	path, _ := serveTest(t, &Server{Source: &fakeSource{}, Containers: &fakeContainers{}})
	s := dialRaw(t, path)
	for line, want := range map[string]string{
		`{"version":1,"op":"container_add"}`:                                         `container_add needs "container" with "name", "netns" and "addr"`,
		`{"version":1,"op":"container_add","container":{"name":"a","netns":"/x"}}`:   `container_add needs`,
		`{"version":1,"op":"container_del","container":{}}`:                          `container_del needs "container" with "name"`,
		`{"version":1,"op":"container_add","container":{"name":"a","netnz":"/x"}}`:   `unknown field "netnz"`,
		`{"version":1,"op":"container_del","container":{"name":"a"},"position":"1"}`: `malformed request`,
	} {
		if r := s.ask(line); r.OK || !strings.Contains(r.Error, want) {
			t.Errorf("%s: reply %+v, want an error containing %q", line, r, want)
		}
	}
}

func TestContainersRefusedWithoutHandler(t *testing.T) {
	path, _ := startServer(t, &fakeSource{})
	s := dialRaw(t, path)
	r := s.ask(`{"version":1,"op":"container_del","container":{"name":"a"}}`)
	if r.OK || !strings.Contains(r.Error, "does not serve container operations") {
		t.Errorf("reply %+v", r)
	}
}
