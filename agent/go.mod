module axion.dev/agent

go 1.22
