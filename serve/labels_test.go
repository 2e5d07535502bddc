package serve

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestClassNames checks that a handler with class names labels every class
// of its answers, and that it refuses names that do not match the classes.
func TestClassNames(t *testing.T) {
	model, dev := trained(t)
	names := []string{"ant", "bee", "cat", "dog"}
	s := startServer(t, model, dev, BatcherConfig{MaxBatch: 4}, HandlerConfig{ClassNames: names})
	x := sample(rand.New(rand.NewPCG(5, 6)), 2)
	code, body := post(t, s.url+"/v1/predict", "application/json", instancesJSON(x, classes))
	if code != 200 {
		t.Fatalf("answered %d %s", code, body)
	}
	var a struct {
		Predictions []struct {
			Top []struct {
				Class int    `json:"class"`
				Label string `json:"label"`
			} `json:"top"`
		} `json:"predictions"`
	}
	if err := json.Unmarshal(body, &a); err != nil || len(a.Predictions) != 1 || len(a.Predictions[0].Top) != classes {
		t.Fatalf("answer %s (%v): want one prediction of %d classes", body, err, classes)
	}
	for _, c := range a.Predictions[0].Top {
		if c.Label != names[c.Class] {
			t.Errorf("class %d labelled %q, want %q", c.Class, c.Label, names[c.Class])
		}
	}

	b, err := NewBatcher(BatcherConfig{Model: model, Device: dev, Inputs: inputs, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = NewHandler(b, HandlerConfig{Shape: testShape, ClassNames: names[:3]})
	if err == nil || !strings.Contains(err.Error(), "3 class names") {
		t.Errorf("NewHandler with 3 names for 4 classes: %v, want an error naming the count", err)
	}
}
