module axion.dev/bench/heartbeat-load

go 1.22
