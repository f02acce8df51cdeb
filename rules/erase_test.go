package rules

import (
	"context"
	"testing"
	"time"
)

// TestEraseViewer: on every state, erasing a viewer removes its action log, the
// prompts about it (from its room's queue too), its counters and its jobs, and leaves
// another viewer's alone.
func TestEraseViewer(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	for name, open := range allStates(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			for _, v := range []string{"v1", "v2"} {
				p := &Prompt{ID: "p-" + v, Room: "r1", Viewer: PromptUser{ID: v}, RuleID: "stay", CreatedAt: at}
				f := Firing{At: at, Limits: []Limit{{Key: "r\x00stay\x00" + v, Cap: 1}},
					Rec: &Record{Action: Action{At: at, Viewer: v, RuleID: "stay", Type: ActPrompt, Detail: p.ID}, Prompt: p}}
				if ok, err := st.Commit(ctx, f); err != nil || !ok[0] {
					t.Fatalf("commit %s: %v %v", v, ok, err)
				}
				if err := st.PutJob(ctx, Job{ID: "j-" + v, RuleID: "followup", Due: at.Add(time.Hour), Env: Env{Viewer: Viewer{ID: v}}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Erase(ctx, "v1"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				viewer string
				held   int
			}{{"v1", 0}, {"v2", 1}} {
				acts, _ := st.Actions(ctx, c.viewer)
				prompts, _ := st.AboutPrompts(ctx, c.viewer)
				if len(acts) != c.held || len(prompts) != c.held {
					t.Errorf("%s: %d actions and %d prompts left, want %d", c.viewer, len(acts), len(prompts), c.held)
				}
				again := Firing{At: at, Limits: []Limit{{Key: "r\x00stay\x00" + c.viewer, Cap: 1}}}
				if ok, _ := st.Commit(ctx, again); ok[0] != (c.held == 0) {
					t.Errorf("%s: counter kept %v, want %v", c.viewer, !ok[0], c.held == 1)
				}
			}
			if room, _ := st.Prompts(ctx, "r1"); len(room) != 1 || room[0].Viewer.ID != "v2" {
				t.Errorf("room queue: %+v", room)
			}
			if jobs, _ := st.Jobs(ctx); len(jobs) != 1 || jobs[0].ID != "j-v2" {
				t.Errorf("jobs: %+v", jobs)
			}
		})
	}
}
