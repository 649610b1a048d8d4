// Goroutines for tests/engine/programs.bats: four counting into their own
// counter and a shared total under a mutex, a channel pipeline (a producer
// sends 1, 2, 3, …; a squarer; a summer that checks it sees every number
// once, in order), a time.Ticker, and one blocked reading a pipe (parked in
// the netpoller) until main writes to it after the trigger. GOMAXPROCS 4
// whatever the CPU count, so the runtime runs several threads; it adds its
// epoll, a pipe of its own and SIGURG preemption. READY once everything
// runs ("at-ready" line first, with the counts); after the trigger
// (CEDANA_WL_TRIGGER) it waits 200 ms and prints PASS when every count went
// on from above its value at READY, the pipeline lost nothing and the
// reader got the byte written after the trigger.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

type state struct {
	mu    sync.Mutex
	per   [4]uint64
	total uint64
	// pipeline: the last number the summer got, the sum of the squares it
	// got, and whether it ever saw a number out of order
	last, sum uint64
	broken    string
	ticks     uint64
}

func (s *state) count(i int) {
	for {
		s.mu.Lock()
		s.per[i]++
		s.total++
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

func produce(out chan<- uint64) {
	for n := uint64(1); ; n++ {
		out <- n
		time.Sleep(500 * time.Microsecond)
	}
}

type pair struct{ n, sq uint64 }

func square(in <-chan uint64, out chan<- pair) {
	for n := range in {
		out <- pair{n, n * n}
	}
}

func (s *state) summarize(in <-chan pair) {
	for p := range in {
		s.mu.Lock()
		if p.n != s.last+1 && s.broken == "" {
			s.broken = fmt.Sprintf("got %d after %d", p.n, s.last)
		}
		s.last = p.n
		s.sum += p.sq
		s.mu.Unlock()
	}
}

func (s *state) tick() {
	t := time.NewTicker(5 * time.Millisecond)
	for range t.C {
		s.mu.Lock()
		s.ticks++
		s.mu.Unlock()
	}
}

type snapshot struct {
	per         [4]uint64
	total, last uint64
	ticks       uint64
}

func (s *state) snap() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot{s.per, s.total, s.last, s.ticks}
}

func (s *state) verify(at snapshot) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum uint64
	for i, v := range s.per {
		if v <= at.per[i] {
			return fmt.Sprintf("counter %d at %d, %d at READY", i, v, at.per[i])
		}
		sum += v
	}
	if sum != s.total {
		return fmt.Sprintf("counters add up to %d, total %d", sum, s.total)
	}
	if s.broken != "" {
		return "pipeline: " + s.broken
	}
	if s.last <= at.last {
		return fmt.Sprintf("pipeline at %d, %d at READY", s.last, at.last)
	}
	// 1² + … + n² = n(n+1)(2n+1)/6
	if want := s.last * (s.last + 1) * (2*s.last + 1) / 6; s.sum != want {
		return fmt.Sprintf("pipeline sum %d, want %d", s.sum, want)
	}
	if s.ticks <= at.ticks {
		return fmt.Sprintf("ticker at %d, %d at READY", s.ticks, at.ticks)
	}
	return ""
}

// read waits for one byte on r and sends it, or the error, on got.
func read(r *os.File, got chan<- string) {
	b := make([]byte, 1)
	if _, err := r.Read(b); err != nil {
		got <- "read: " + err.Error()
		return
	}
	got <- string(b)
}

func main() {
	runtime.GOMAXPROCS(4)
	trigger := os.Getenv("CEDANA_WL_TRIGGER")
	s := &state{}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Println("FAIL: pipe: " + err.Error())
		os.Exit(1)
	}
	got := make(chan string, 1)
	go read(r, got)
	for i := range s.per {
		go s.count(i)
	}
	nums, squares := make(chan uint64), make(chan pair, 16)
	go produce(nums)
	go square(nums, squares)
	go s.summarize(squares)
	go s.tick()
	time.Sleep(300 * time.Millisecond)
	at := s.snap()
	fmt.Printf("at-ready %v total %d pipeline %d ticks %d\n", at.per, at.total, at.last, at.ticks)
	fmt.Println("READY")
	for {
		if _, err := os.Stat(trigger); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case g := <-got:
		fmt.Println("FAIL: the reader got " + g + " before the trigger")
		os.Exit(1)
	default:
	}
	if _, err := w.Write([]byte("x")); err != nil {
		fmt.Println("FAIL: write: " + err.Error())
		os.Exit(1)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case g := <-got:
		if g != "x" {
			fmt.Println("FAIL: the reader got " + g)
			os.Exit(1)
		}
	default:
		fmt.Println("FAIL: the reader got nothing")
		os.Exit(1)
	}
	end := s.snap()
	fmt.Printf("at-end %v total %d pipeline %d ticks %d\n", end.per, end.total, end.last, end.ticks)
	if why := s.verify(at); why != "" {
		fmt.Println("FAIL: " + why)
		os.Exit(1)
	}
	fmt.Println("PASS")
}
