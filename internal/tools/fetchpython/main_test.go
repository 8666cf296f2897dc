package main

import (
	"strings"
	"testing"
)

func TestVerifyRefusesAnythingButThePinnedArtifact(t *testing.T) {
	_, err := verify([]byte("a corrupted or substituted tarball"))
	if err == nil || !strings.Contains(err.Error(), "does not match its pinned integrity") || !strings.Contains(err.Error(), "refusing to build with it") {
		t.Fatalf("got %v", err)
	}
}
